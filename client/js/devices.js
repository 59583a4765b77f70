// The device check: camera preview, microphone level, speaker test, device choice, and the
// audio-only / view-only paths. The stream it opens is handed to the room (no second prompt).
import { announce, h, replace, setText } from "./dom.js";
import { deviceErrorKind } from "./errors.js";
import { t } from "./i18n.js";

const KEY = "madoguchi.devices";

/** @typedef {{mode: "video"|"audio"|"view", cameraId?: string, micId?: string, speakerId?: string}} DeviceChoice */

/** The last choice, kept for this browser tab. */
export function loadChoice() {
  try {
    const saved = JSON.parse(sessionStorage.getItem(KEY) || "null");
    if (saved && ["video", "audio", "view"].includes(saved.mode)) return saved;
  } catch {
    // nothing usable saved
  }
  return { mode: "video" };
}

function saveChoice(choice) {
  try {
    sessionStorage.setItem(KEY, JSON.stringify(choice));
  } catch {
    // not kept; the room still gets the stream
  }
}

/** Open camera and/or microphone for a choice; resolves to a MediaStream (maybe without tracks). */
export async function openMedia(choice) {
  if (choice.mode === "view") return new MediaStream();
  if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
    const error = new Error("no mediaDevices");
    error.name = "TypeError";
    throw error;
  }
  const audio = {
    echoCancellation: true,
    noiseSuppression: true,
    autoGainControl: true,
    ...(choice.micId ? { deviceId: { exact: choice.micId } } : {}),
  };
  const video =
    choice.mode === "video"
      ? {
          width: { ideal: 640 },
          height: { ideal: 480 },
          frameRate: { ideal: 24, max: 30 },
          ...(choice.cameraId ? { deviceId: { exact: choice.cameraId } } : {}),
        }
      : false;
  return navigator.mediaDevices.getUserMedia({ audio, video });
}

/** Stop every track of a stream. */
export function stopStream(stream) {
  if (stream) for (const track of stream.getTracks()) track.stop();
}

/** Play a short two-tone chime, on the chosen speaker where the browser allows it. */
export async function playChime(speakerId) {
  const Ctx = window.AudioContext || window.webkitAudioContext;
  const ctx = new Ctx();
  const dest = ctx.createMediaStreamDestination();
  const gain = ctx.createGain();
  gain.connect(dest);
  gain.connect(ctx.destination);
  const now = ctx.currentTime;
  for (const [i, freq] of [880, 660].entries()) {
    const osc = ctx.createOscillator();
    osc.frequency.value = freq;
    osc.connect(gain);
    osc.start(now + i * 0.35);
    osc.stop(now + i * 0.35 + 0.3);
  }
  gain.gain.setValueAtTime(0.2, now);
  if (speakerId && typeof HTMLMediaElement.prototype.setSinkId === "function") {
    // route only through the element so the chosen speaker plays it
    gain.disconnect(ctx.destination);
    const audio = new Audio();
    audio.srcObject = dest.stream;
    await audio.setSinkId(speakerId).catch(() => gain.connect(ctx.destination));
    await audio.play().catch(() => {});
  }
  setTimeout(() => ctx.close().catch(() => {}), 1200);
}

/** A level meter fed by the microphone track of `stream`; returns a stop function. */
function startLevel(stream, meter, heard) {
  const track = stream.getAudioTracks()[0];
  if (!track) return () => {};
  const Ctx = window.AudioContext || window.webkitAudioContext;
  const ctx = new Ctx();
  const source = ctx.createMediaStreamSource(new MediaStream([track]));
  const analyser = ctx.createAnalyser();
  analyser.fftSize = 512;
  source.connect(analyser);
  const data = new Uint8Array(analyser.fftSize);
  let stopped = false;
  let timer = 0;
  const tick = () => {
    if (stopped) return;
    analyser.getByteTimeDomainData(data);
    let peak = 0;
    for (const v of data) peak = Math.max(peak, Math.abs(v - 128));
    const level = Math.min(100, Math.round((peak / 128) * 140));
    meter.value = level;
    meter.setAttribute("aria-valuetext", `${level}%`);
    if (level > 8) heard.hidden = false;
    timer = setTimeout(tick, 100);
  };
  tick();
  return () => {
    if (stopped) return;
    stopped = true;
    clearTimeout(timer);
    ctx.close().catch(() => {});
  };
}

/** The help shown when the camera or microphone cannot be opened. */
export function permissionHelp(kind, onRetry) {
  const steps =
    kind === "denied"
      ? [
          h("p", { t: "perm.denied" }),
          h("p", { t: "perm.how" }),
          h("ol", {}, h("li", { t: "perm.step1" }), h("li", { t: "perm.step2" }), h("li", { t: "perm.step3" })),
          h("p", { t: "perm.ios" }),
        ]
      : [h("p", { t: `perm.${kind}` })];
  return h(
    "div",
    { class: "notice error", role: "alert", id: "permission-help" },
    h("strong", { t: "perm.title" }),
    steps,
    h("p", { t: "perm.instead" }),
    h("button", { type: "button", class: "secondary", t: "perm.retry", onclick: onRetry }),
  );
}

/**
 * Draw the device check into `root`.
 * @param {HTMLElement} root
 * @param {{onEnter?: (stream: MediaStream, choice: DeviceChoice) => void, enterKey?: string}} options
 * @returns {{stop: () => void}}
 */
export function renderDeviceCheck(root, options = {}) {
  let choice = loadChoice();
  let stream = null;
  let stopLevel = () => {};
  let handedOver = false;
  let generation = 0;
  let ready = Promise.resolve();

  const video = h("video", { autoplay: true, muted: true, playsinline: true, "aria-hidden": "true" });
  video.muted = true;
  const placeholder = h("div", { class: "placeholder", t: "check.preview.wait" });
  const preview = h(
    "div",
    { class: "preview", role: "img", tattr: { "aria-label": "check.preview" } },
    video,
    placeholder,
  );
  const meter = h("meter", { id: "mic-level", min: "0", max: "100", low: "8", value: "0" });
  const heard = h("p", { class: "notice ok", hidden: true, t: "check.level.heard" });
  const problem = h("div", { id: "device-problem" });
  const cameraSelect = h("select", { id: "camera-select" });
  const micSelect = h("select", { id: "mic-select" });
  const speakerSelect = h("select", { id: "speaker-select" });
  const canPickSpeaker = typeof HTMLMediaElement.prototype.setSinkId === "function";

  const modeOption = (mode) =>
    h(
      "label",
      { class: "check-option" },
      h("input", {
        type: "radio",
        name: "mode",
        value: mode,
        checked: choice.mode === mode,
        onchange: () => {
          choice = { ...choice, mode };
          restart();
        },
      }),
      h("span", { t: `check.mode.${mode}` }),
    );

  const cameraField = h(
    "div",
    { class: "field" },
    h("label", { for: "camera-select", t: "check.camera" }),
    cameraSelect,
  );
  const micField = h(
    "div",
    { class: "field" },
    h("label", { for: "mic-select", t: "check.mic" }),
    micSelect,
    h("span", { class: "label", id: "mic-level-label", t: "check.level" }),
    h("span", { class: "hint", t: "check.level.hint" }),
    meter,
    heard,
  );
  meter.setAttribute("aria-labelledby", "mic-level-label");
  const speakerField = h(
    "div",
    { class: "field" },
    canPickSpeaker ? h("label", { for: "speaker-select", t: "check.speaker" }) : h("span", { class: "label", t: "check.speaker" }),
    canPickSpeaker ? speakerSelect : null,
    h("span", { class: "hint", t: "check.speaker.hint" }),
    h("button", {
      type: "button",
      class: "secondary",
      id: "speaker-test",
      t: "check.speaker.test",
      onclick: () => playChime(choice.speakerId),
    }),
  );

  const enter = options.onEnter
    ? h("button", {
        type: "button",
        id: "enter-room",
        t: options.enterKey || "check.enter",
        onclick: async (event) => {
          event.currentTarget.disabled = true;
          await ready;
          handedOver = true;
          stopLevel();
          saveChoice(choice);
          options.onEnter(stream || new MediaStream(), choice);
        },
      })
    : null;

  replace(
    root,
    h("h1", { t: "check.title" }),
    h("p", { class: "lead", t: "check.lead" }),
    problem,
    h("fieldset", {}, h("legend", { t: "check.mode" }), modeOption("video"), modeOption("audio"), modeOption("view")),
    h("div", { class: "grid-2" }, h("div", {}, preview, cameraField), h("div", {}, micField, speakerField)),
    enter ? h("div", { class: "button-row" }, enter) : null,
  );

  for (const [select, key] of [
    [cameraSelect, "cameraId"],
    [micSelect, "micId"],
    [speakerSelect, "speakerId"],
  ]) {
    select.addEventListener("change", () => {
      choice = { ...choice, [key]: select.value || undefined };
      saveChoice(choice);
      if (key !== "speakerId") restart();
    });
  }

  async function fillDevices() {
    const devices = await navigator.mediaDevices.enumerateDevices().catch(() => []);
    const fill = (select, kind, current) => {
      const list = devices.filter((d) => d.kind === kind);
      replace(
        select,
        list.length === 0 ? h("option", { value: "", t: "check.default" }) : null,
        list.map((d, i) =>
          h("option", { value: d.deviceId, selected: d.deviceId === current }, d.label || `${t("check.default")} ${i + 1}`),
        ),
      );
    };
    fill(cameraSelect, "videoinput", choice.cameraId);
    fill(micSelect, "audioinput", choice.micId);
    fill(speakerSelect, "audiooutput", choice.speakerId);
  }

  function restart() {
    ready = open();
    return ready;
  }

  async function open() {
    const gen = ++generation;
    stopLevel();
    stopStream(stream);
    stream = null;
    replace(problem);
    heard.hidden = true;
    meter.value = 0;
    cameraField.hidden = choice.mode !== "video";
    micField.hidden = choice.mode === "view";
    saveChoice(choice);
    if (choice.mode !== "video") {
      video.srcObject = null;
      setText(placeholder, "check.preview.off");
      placeholder.hidden = false;
    } else {
      setText(placeholder, "check.preview.wait");
      placeholder.hidden = false;
    }
    let opened;
    try {
      opened = await openMedia(choice);
    } catch (error) {
      if (gen !== generation) return;
      const kind = deviceErrorKind(error);
      replace(problem, permissionHelp(kind, restart));
      announce(t("perm.title"));
      return;
    }
    if (gen !== generation || handedOver) {
      // a newer choice (or the room) took over while this one opened
      stopStream(opened);
      return;
    }
    stream = opened;
    if (stream.getVideoTracks().length) {
      video.srcObject = stream;
      placeholder.hidden = true;
    }
    stopLevel = startLevel(stream, meter, heard);
    await fillDevices();
  }

  restart();
  return {
    stop() {
      stopLevel();
      if (!handedOver) stopStream(stream);
    },
  };
}
