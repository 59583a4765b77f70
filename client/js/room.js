// The consultation room: tiles (gallery / active speaker), the hearing view (speaker + queue),
// controls, people, chat, and the moderation panel for staff. It draws a Session's state.
import { loadChoice } from "./devices.js";
import { announce, focusHeading, h, replace, setText } from "./dom.js";
import { errorMessage } from "./errors.js";
import { formatClock, formatCountdown, label, onLangChange, t } from "./i18n.js";
import { icon } from "./icons.js";

const MODERATOR_PERMISSIONS = ["admit", "grant_floor", "mute_others", "remove"];

/** Draw the room for a joined session; returns {stop}. */
export function renderRoom(main, session, options = {}) {
  const room = new Room(main, session, options);
  return { stop: () => room.stop() };
}

/** The screen after leaving, being removed, or the end of the consultation. */
export function renderEnded(main, reason, againHref) {
  main.className = "";
  const key = { left: "end.left", ended: "end.ended", removed: "end.removed", denied: "end.denied", replaced: "end.replaced" }[reason] || "end.lost";
  replace(
    main,
    h(
      "div",
      { class: "ended" },
      h("h1", { t: reason === "left" ? "room.leave" : "end.title" }),
      h("p", { class: "lead", id: "ended-reason", t: key }),
      h(
        "div",
        { class: "button-row", style: null },
        // after removal, refusal or the end there is no way back in
        againHref && !["removed", "denied", "ended"].includes(reason)
          ? h("a", { class: "button", href: againHref, t: "end.again" })
          : null,
        h("a", { class: "button secondary", href: "/", t: "end.home" }),
      ),
    ),
  );
  focusHeading(main);
}

class Room {
  constructor(main, session, options) {
    this.main = main;
    this.session = session;
    this.options = options;
    this.layout = "gallery";
    this.panel = null; // "people" | "chat" | "manage" | null
    this.tiles = new Map();
    this.audios = new Map();
    this.unread = 0;
    this.lastHolder = undefined;
    this.build();
    this.listeners = [
      ["state", () => this.update()],
      ["media", () => this.update()],
      ["chat", (e) => this.onChat(e.detail)],
      ["notice", (e) => this.onNotice(e.detail)],
      ["reconnecting", () => this.onReconnecting()],
      ["reconnected", () => this.onReconnected()],
    ];
    for (const [type, fn] of this.listeners) session.addEventListener(type, fn);
    this.stopLang = onLangChange(() => this.update(true));
    this.timer = setInterval(() => this.tick(), 1000);
    // Escape closes the side panel and gives the focus back to its button
    this.onKey = (event) => {
      if (event.key !== "Escape" || !this.panel) return;
      const button = this.buttons[this.panel];
      this.togglePanel(this.panel);
      button.focus();
    };
    this.main.addEventListener("keydown", this.onKey);
    this.update();
    this.tick();
    focusHeading(main);
  }

  stop() {
    clearInterval(this.timer);
    this.main.removeEventListener("keydown", this.onKey);
    this.stopLang();
    for (const [type, fn] of this.listeners) this.session.removeEventListener(type, fn);
    for (const audio of this.audios.values()) audio.srcObject = null;
  }

  get hearing() {
    return this.session.consultation?.floor_mode === "raise_hand";
  }

  get moderator() {
    return MODERATOR_PERMISSIONS.some((p) => this.session.can(p));
  }

  // ---------------- layout ----------------

  build() {
    const s = this.session;
    this.main.className = "room-main";
    this.clock = h("span", { class: "clock", id: "room-clock" });
    this.remaining = h("span", { class: "clock", id: "room-remaining" });
    this.reconnecting = h("div", { class: "banner reconnecting", role: "status", hidden: true, id: "reconnecting" });
    this.floorBanner = h("div", { class: "banner floor", hidden: true, id: "floor-banner" });
    this.floorLive = h("div", { class: "visually-hidden", "aria-live": "polite" });
    this.noticeBar = h("div", { class: "banner info", role: "status", hidden: true, id: "room-notice" });
    this.tilesEl = h("div", { class: "tiles", id: "tiles" });
    this.hearingEl = h("div", { class: "hearing-stage", id: "hearing", hidden: true });
    this.empty = h("p", { id: "room-empty", t: "room.noone", hidden: true });
    this.panelEl = h("aside", { class: "panel", id: "side-panel", hidden: true });
    this.audioBox = h("div", { hidden: true, id: "remote-audio" });
    this.playBlocked = h(
      "div",
      { class: "banner info", hidden: true },
      h("span", { t: "room.audio.blocked" }),
      " ",
      h("button", { type: "button", class: "small", t: "room.audio.play", onclick: () => this.resumeAudio() }),
    );
    this.controls = h("div", { class: "controls", role: "group", tattr: { "aria-label": "room.label" } });
    this.buttons = this.makeButtons();
    replace(
      this.main,
      h(
        "section",
        { class: "room", tattr: { "aria-label": "room.label" } },
        h(
          "div",
          { class: "room-bar" },
          h("h1", { id: "room-title" }, s.consultation?.title || ""),
          this.clock,
          this.remaining,
        ),
        this.reconnecting,
        this.floorBanner,
        this.floorLive,
        this.noticeBar,
        this.playBlocked,
        h(
          "div",
          { class: "room-body" },
          // the stage scrolls on small screens: focusable, so the keyboard can scroll it too
          (this.stageEl = h(
            "div",
            { class: "stage", tabindex: "0", role: "region", tattr: { "aria-label": "room.stage" } },
            this.hearingEl,
            this.empty,
            this.tilesEl,
          )),
          this.panelEl,
        ),
        this.controls,
        this.audioBox,
      ),
    );
  }

  makeButton(id, onclick) {
    const holder = h("span", { class: "icon-box", "aria-hidden": "true" });
    const text = h("span", { class: "text" });
    const button = h("button", { type: "button", id, onclick }, holder, text);
    button.icon = holder;
    button.textEl = text;
    return button;
  }

  makeButtons() {
    const s = this.session;
    return {
      mic: this.makeButton("btn-mic", () => s.setMic(!s.mic)),
      camera: this.makeButton("btn-camera", () => s.setCamera(!s.camera).catch(() => this.onNotice({ key: "perm.title", error: true }))),
      screen: this.makeButton("btn-screen", () => this.toggleScreen()),
      hand: this.makeButton("btn-hand", () => (this.myHand() ? s.lowerHand() : s.raiseHand())),
      layout: this.makeButton("btn-layout", () => {
        this.layout = this.layout === "gallery" ? "speaker" : "gallery";
        this.update();
      }),
      chat: this.makeButton("btn-chat", () => this.togglePanel("chat")),
      people: this.makeButton("btn-people", () => this.togglePanel("people")),
      manage: this.makeButton("btn-manage", () => this.togglePanel("manage")),
      leave: this.makeButton("btn-leave", () => {
        if (window.confirm(t("room.leave.confirm"))) s.leave();
      }),
    };
  }

  setButton(button, iconName, key, pressed) {
    if (button.icon.dataset.icon !== iconName) {
      button.icon.dataset.icon = iconName;
      replace(button.icon, icon(iconName));
    }
    setText(button.textEl, key);
    if (pressed === undefined) button.removeAttribute("aria-pressed");
    else button.setAttribute("aria-pressed", String(pressed));
  }

  async toggleScreen() {
    if (this.session.screenTrack) return this.session.stopScreen();
    try {
      await this.session.startScreen();
    } catch {
      // the person closed the browser's picker: nothing to say
    }
  }

  togglePanel(name) {
    this.panel = this.panel === name ? null : name;
    if (name === "chat") this.unread = 0;
    this.update();
    if (this.panel) this.panelEl.querySelector("h2")?.focus();
  }

  // ---------------- state → screen ----------------

  me() {
    return this.session.you ? this.session.participants.get(this.session.you.id) : null;
  }

  myHand() {
    const id = this.session.you?.id;
    return id ? this.session.hands.indexOf(id) + 1 : 0;
  }

  nameOf(id) {
    const p = this.session.participants.get(id);
    return p ? p.name : "";
  }

  update() {
    this.updateControls();
    this.updateHearing();
    this.updateTiles();
    this.updateAudio();
    this.updatePanel();
    this.updateFloor();
  }

  updateControls() {
    const s = this.session;
    const b = this.buttons;
    const hasMic = s.localStream.getAudioTracks().length > 0 && s.can("publish_audio");
    const canVideo = s.can("publish_video") && Boolean(navigator.mediaDevices);
    const me = this.me();
    this.setButton(b.mic, s.mic ? "mic" : "micOff", s.mic ? "room.mic.on" : "room.mic.off", s.mic);
    b.mic.classList.toggle("off", !s.mic);
    this.setButton(b.camera, s.camera ? "camera" : "cameraOff", s.camera ? "room.cam.on" : "room.cam.off", s.camera);
    b.camera.classList.toggle("off", !s.camera);
    this.setButton(b.screen, "screen", s.screenTrack ? "room.share.stop" : "room.share", Boolean(s.screenTrack));
    const hand = this.myHand();
    this.setButton(b.hand, "hand", hand ? "room.hand.lower" : "room.hand.raise", Boolean(hand));
    this.setButton(b.layout, this.layout === "gallery" ? "speaker" : "grid", this.layout === "gallery" ? "room.layout.speaker" : "room.layout.gallery");
    this.setButton(b.chat, "chat", "room.chat", this.panel === "chat");
    if (this.unread) b.chat.textEl.textContent = `${t("room.chat")} (${this.unread})`;
    this.setButton(b.people, "people", "room.people", this.panel === "people");
    b.people.textEl.textContent = `${t("room.people")} (${s.participants.size})`;
    this.setButton(b.manage, "manage", "room.manage", this.panel === "manage");
    if (s.lobby.length) b.manage.textEl.textContent = `${t("room.manage")} (${s.lobby.length + s.hands.length})`;
    this.setButton(b.leave, "leave", "room.leave");
    b.leave.classList.add("leave");
    const show = [
      hasMic ? b.mic : null,
      canVideo && !(me && me.pseudonym !== null && me.pseudonym !== undefined) ? b.camera : null,
      s.can("publish_screen") && navigator.mediaDevices?.getDisplayMedia ? b.screen : null,
      this.hearing && s.can("raise_hand") && !s.can("grant_floor") ? b.hand : null,
      this.hearing && !this.moderator ? null : b.layout,
      s.can("chat") ? b.chat : null,
      b.people,
      this.moderator ? b.manage : null,
      b.leave,
    ].filter(Boolean);
    if (show.length !== this.controls.children.length || show.some((el, i) => this.controls.children[i] !== el)) {
      replace(this.controls, show);
    }
  }

  /** Which tiles to show: everyone (gallery), or only those who send a picture (hearing). */
  tileKeys() {
    const s = this.session;
    const keys = [];
    const myId = s.you?.id;
    for (const p of s.participants.values()) {
      const media = s.remote.get(p.id) || {};
      if (p.id === myId) {
        if (s.camera || !this.hearing) keys.push({ key: `${p.id}:camera`, p, self: true });
        if (s.screenTrack) keys.push({ key: `${p.id}:screen`, p, self: true, screen: true });
        continue;
      }
      const hasCamera = Boolean(media.camera) && p.video !== false;
      if (hasCamera || !this.hearing) keys.push({ key: `${p.id}:camera`, p, stream: hasCamera ? media.camera : null });
      if (media.screen) keys.push({ key: `${p.id}:screen`, p, stream: media.screen, screen: true });
    }
    return keys;
  }

  updateTiles() {
    const s = this.session;
    const wanted = this.tileKeys();
    const seen = new Set();
    for (const item of wanted) {
      seen.add(item.key);
      let tile = this.tiles.get(item.key);
      if (!tile) {
        tile = this.makeTile(item);
        this.tiles.set(item.key, tile);
      }
      this.fillTile(tile, item);
    }
    for (const [key, tile] of this.tiles) {
      if (!seen.has(key)) {
        tile.video.srcObject = null;
        tile.el.remove();
        this.tiles.delete(key);
      }
    }
    // order: screens first, then the active speaker, then the others as they joined
    let main = null;
    if (this.layout === "speaker") {
      main =
        wanted.find((w) => w.screen) ||
        wanted.find((w) => w.p.speaking && !w.self) ||
        wanted.find((w) => s.floor.holder === w.p.id) ||
        wanted.find((w) => !w.self) ||
        wanted[0];
    }
    const ordered = wanted.map((w) => this.tiles.get(w.key).el);
    for (const [i, el] of ordered.entries()) {
      el.classList.toggle("main", Boolean(main) && wanted[i].key === main.key);
      if (this.tilesEl.children[i] !== el) this.tilesEl.insertBefore(el, this.tilesEl.children[i] || null);
    }
    this.tilesEl.classList.toggle("speaker-layout", this.layout === "speaker");
    const alone = s.participants.size <= 1;
    this.empty.hidden = !alone;
  }

  makeTile(item) {
    const video = h("video", { autoplay: true, playsinline: true, "aria-hidden": "true" });
    video.muted = true; // sound plays through the audio elements, also when no tile is shown
    const avatar = h("div", { class: "avatar", "aria-hidden": "true" });
    const name = h("div", { class: "name" });
    const el = h(
      "figure",
      { class: `tile${item.self ? " self" : ""}`, dataset: { participant: item.p.id, source: item.screen ? "screen" : "camera" } },
      video,
      avatar,
      name,
    );
    el.style.margin = "0";
    return { el, video, avatar, name };
  }

  fillTile(tile, item) {
    const s = this.session;
    const p = item.p;
    const stream = item.self
      ? item.screen
        ? new MediaStream([s.screenTrack])
        : s.camera
          ? s.localStream
          : null
      : item.stream;
    if (item.self && item.screen) {
      if (!tile.video.srcObject || tile.video.srcObject.getTracks()[0] !== s.screenTrack) tile.video.srcObject = stream;
    } else if (tile.video.srcObject !== stream) {
      tile.video.srcObject = stream;
    }
    tile.video.hidden = !stream;
    tile.avatar.hidden = Boolean(stream);
    tile.avatar.textContent = (p.name || "?").slice(0, 1);
    tile.el.classList.toggle("self", Boolean(item.self) && !item.screen);
    tile.el.classList.toggle("speaking", Boolean(p.speaking));
    const states = this.stateWords(p, item.self);
    const who = item.screen ? t("room.screen.of", { name: p.name }) : `${p.name}${item.self ? t("room.you") : ""}`;
    tile.name.textContent = states.length && !item.screen ? `${who} · ${states.join(" · ")}` : who;
    tile.el.setAttribute("aria-label", tile.name.textContent);
  }

  /** A participant's state in words (never by colour alone). */
  stateWords(p, self) {
    const words = [];
    const s = this.session;
    const hand = s.hands.indexOf(p.id) + 1;
    if (s.floor.holder === p.id) words.push(t("state.floor"));
    if (hand) words.push(t("state.hand", { n: hand }));
    if (p.muted) words.push(t("state.muted"));
    else if (self ? !s.mic : !p.audio) words.push(t("state.mic.off"));
    if (p.speaking) words.push(t("room.speaking"));
    if (p.screen) words.push(t("state.screen"));
    if (p.connected === false) words.push(t("state.disconnected"));
    return words;
  }

  updateAudio() {
    const s = this.session;
    const seen = new Set();
    for (const [id, media] of s.remote) {
      if (!media.mic) continue;
      seen.add(id);
      let audio = this.audios.get(id);
      if (!audio) {
        audio = h("audio", { autoplay: true, dataset: { participant: id } });
        this.audios.set(id, audio);
        this.audioBox.append(audio);
      }
      if (audio.srcObject !== media.mic) {
        audio.srcObject = media.mic;
        // the speaker chosen in the device check, where the browser lets us choose
        const speakerId = loadChoice().speakerId;
        if (speakerId && audio.setSinkId) audio.setSinkId(speakerId).catch(() => {});
        audio.play().catch(() => {
          this.playBlocked.hidden = false;
        });
      }
    }
    for (const [id, audio] of this.audios) {
      if (!seen.has(id)) {
        audio.srcObject = null;
        audio.remove();
        this.audios.delete(id);
      }
    }
  }

  resumeAudio() {
    for (const audio of this.audios.values()) audio.play().catch(() => {});
    this.playBlocked.hidden = true;
  }

  // ---------------- hearing: the speaker and the queue ----------------

  updateHearing() {
    this.hearingEl.hidden = !this.hearing;
    this.stageEl.classList.toggle("hearing-on", this.hearing);
    if (!this.hearing) return;
    const s = this.session;
    const holder = s.floor.holder;
    const myId = s.you?.id;
    const hand = this.myHand();
    this.countdownEl = h("p", { class: "countdown", id: "hearing-countdown" });
    replace(
      this.hearingEl,
      h(
        "section",
        { class: "hearing-speaker", "aria-labelledby": "speaker-title" },
        h("h2", { id: "speaker-title", t: "room.floor.speaker" }),
        holder
          ? [h("p", { class: "now", id: "hearing-speaker-name" }, `${this.nameOf(holder)}${holder === myId ? t("room.you") : ""}`), this.countdownEl]
          : h("p", { id: "hearing-speaker-name", t: "room.floor.none" }),
        s.can("raise_hand") && !s.can("grant_floor")
          ? h(
              "p",
              { id: "hand-position" },
              hand ? t("room.hand.position", { n: hand }) : holder === myId ? "" : t("room.hand.none"),
            )
          : null,
        s.can("raise_hand") && !this.moderator ? h("p", { class: "hint", t: "room.hearing.lead" }) : null,
      ),
      h(
        "section",
        { class: "hearing-speaker", "aria-labelledby": "queue-title" },
        h("h2", { id: "queue-title", t: "room.queue" }),
        s.hands.length
          ? h(
              "ol",
              { class: "queue-list", id: "queue-list" },
              s.hands.map((id) => h("li", { class: id === myId ? "me" : null }, `${this.nameOf(id)}${id === myId ? t("room.you") : ""}`)),
            )
          : h("p", { t: "room.queue.empty" }),
      ),
    );
    this.tick();
  }

  updateFloor() {
    const s = this.session;
    const holder = s.floor.holder;
    if (holder !== this.lastHolder) {
      this.lastHolder = holder;
      this.floorLive.textContent = holder
        ? t("room.floor.other.untimed", { name: this.nameOf(holder) })
        : t("room.floor.none");
    }
    this.tick();
  }

  tick() {
    const s = this.session;
    if (!this.clock) return;
    const now = new Date(s.now());
    this.clock.textContent = `${t("room.clock")} ${formatClock(now)}`;
    const endsAt = s.consultation?.ends_at ? Date.parse(s.consultation.ends_at) : null;
    this.remaining.hidden = !endsAt;
    if (endsAt) {
      const minutes = Math.max(0, Math.ceil((endsAt - now.getTime()) / 60000));
      this.remaining.textContent = `${t("room.remaining")} ${t("room.min", { m: minutes })}`;
    }
    const holder = s.floor.holder;
    this.floorBanner.hidden = !holder;
    if (holder) {
      const left = s.floor.ends_at ? formatCountdown((s.floor.ends_at - now.getTime()) / 1000) : null;
      const mine = holder === s.you?.id;
      this.floorBanner.textContent = left
        ? mine
          ? t("room.floor.you", { t: left })
          : t("room.floor.other", { name: this.nameOf(holder), t: left })
        : t("room.floor.other.untimed", { name: this.nameOf(holder) });
      if (this.countdownEl) this.countdownEl.textContent = left || "";
    }
  }

  // ---------------- side panel ----------------

  updatePanel() {
    this.panelEl.hidden = !this.panel;
    if (!this.panel) return;
    const active = document.activeElement;
    const keepFocus = this.panelEl.contains(active) && active.id ? active.id : null;
    const draft = this.panelEl.querySelector("#chat-text")?.value;
    const title = { chat: "chat.title", people: "room.people", manage: "room.manage" }[this.panel];
    replace(
      this.panelEl,
      h(
        "div",
        { class: "panel-head" },
        h("h2", { tabindex: "-1", t: title }),
        h("button", { type: "button", class: "secondary small", id: "panel-close", t: "room.close", onclick: () => this.togglePanel(this.panel) }),
      ),
      h("div", { class: "panel-body" }, this[`${this.panel}Panel`]()),
    );
    if (draft !== undefined && this.panelEl.querySelector("#chat-text")) this.panelEl.querySelector("#chat-text").value = draft;
    if (keepFocus) this.panelEl.querySelector(`#${keepFocus}`)?.focus();
  }

  peoplePanel() {
    const s = this.session;
    const myId = s.you?.id;
    return h(
      "ul",
      { class: "people", id: "people-list" },
      [...s.participants.values()].map((p) =>
        h(
          "li",
          { dataset: { participant: p.id } },
          h("div", { class: "who" }, `${p.name}${p.id === myId ? t("room.you") : ""}`),
          h("div", { class: "state" }, [label(p.role_label), ...this.stateWords(p, p.id === myId)].join(" · ")),
          p.identity ? h("div", { class: "state" }, `${t("mod.identity")}: ${p.identity.name} ${p.identity.email || ""}`) : null,
          p.id !== myId ? this.personActions(p) : null,
        ),
      ),
    );
  }

  personActions(p) {
    const s = this.session;
    const actions = [];
    const button = (key, onclick, cls = "secondary small") => h("button", { type: "button", class: cls, t: key, onclick, "aria-label": `${t(key)}: ${p.name}` });
    if (this.hearing && s.can("grant_floor")) {
      if (s.floor.holder === p.id) actions.push(button("mod.revoke", () => s.revokeFloor()));
      else if (p.hand) actions.push(button("mod.grant", () => s.grantFloor(p.id)));
    }
    if (s.can("mute_others")) {
      if (p.muted) actions.push(button("mod.ask_unmute", () => s.askUnmute(p.id, "audio")));
      else if (p.audio) actions.push(button("mod.mute", () => s.mute(p.id, "audio")));
      if (p.video) actions.push(button("mod.mute.video", () => s.mute(p.id, "video")));
    }
    if (s.can("remove")) {
      actions.push(
        button("mod.remove", () => {
          if (window.confirm(t("mod.remove.confirm", { name: p.name }))) s.remove(p.id);
        }, "danger small"),
      );
    }
    return actions.length ? h("div", { class: "actions" }, actions) : null;
  }

  chatPanel() {
    const s = this.session;
    const form = h(
      "form",
      { id: "chat-form" },
      h("div", { class: "field" }, h("label", { for: "chat-text", t: "chat.message" }), h("textarea", { id: "chat-text", rows: "3", maxlength: "2000", required: true })),
      h(
        "div",
        { class: "field" },
        h("label", { for: "chat-to", t: "chat.to" }),
        h("select", { id: "chat-to" }, h("option", { value: "all", t: "chat.to.all" }), h("option", { value: "staff", t: "chat.to.staff" })),
      ),
      h("button", { type: "submit", t: "chat.send" }),
    );
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      const text = form.querySelector("#chat-text").value.trim();
      if (!text) return;
      s.chat(text, form.querySelector("#chat-to").value);
      form.querySelector("#chat-text").value = "";
    });
    return [
      s.chats.length
        ? h("ol", { class: "chat-log", id: "chat-log", "aria-live": "polite" }, s.chats.map((m) => this.chatItem(m)))
        : h("p", { id: "chat-log", t: "chat.empty" }),
      form,
    ];
  }

  chatItem(m) {
    return h(
      "li",
      {},
      h(
        "div",
        { class: "meta" },
        `${m.name} · ${formatClock(new Date(m.at))}`,
        m.to === "staff" ? h("span", { class: "private" }, ` · ${t("chat.private")}`) : null,
      ),
      h("div", {}, m.text),
    );
  }

  managePanel() {
    const s = this.session;
    const sections = [];
    if (s.can("admit")) {
      sections.push(
        h("h3", { t: "mod.lobby" }),
        s.lobby.length
          ? h(
              "ul",
              { class: "people", id: "lobby-list" },
              s.lobby.map((p) =>
                h(
                  "li",
                  { dataset: { participant: p.id } },
                  h("div", { class: "who" }, p.name),
                  h("div", { class: "state" }, label(p.role_label)),
                  p.identity ? h("div", { class: "state" }, `${t("mod.identity")}: ${p.identity.name}`) : null,
                  h(
                    "div",
                    { class: "actions" },
                    h("button", { type: "button", class: "small", t: "mod.admit", "aria-label": `${t("mod.admit")}: ${p.name}`, onclick: () => s.admit(p.id) }),
                    h("button", { type: "button", class: "secondary small", t: "mod.deny", "aria-label": `${t("mod.deny")}: ${p.name}`, onclick: () => s.deny(p.id) }),
                  ),
                ),
              ),
            )
          : h("p", { t: "mod.lobby.empty" }),
      );
    }
    if (this.hearing && s.can("grant_floor")) {
      sections.push(
        h("h3", { t: "mod.hands" }),
        s.floor.holder
          ? h("p", {}, t("room.floor.other.untimed", { name: this.nameOf(s.floor.holder) }), " ", h("button", { type: "button", class: "secondary small", id: "btn-revoke", t: "mod.revoke", onclick: () => s.revokeFloor() }))
          : null,
        s.hands.length
          ? h(
              "ol",
              { class: "people", id: "hand-queue" },
              s.hands.map((id) =>
                h(
                  "li",
                  { dataset: { participant: id } },
                  h("div", { class: "who" }, this.nameOf(id)),
                  h(
                    "div",
                    { class: "actions" },
                    h("button", { type: "button", class: "small", t: "mod.grant", "aria-label": `${t("mod.grant")}: ${this.nameOf(id)}`, onclick: () => s.grantFloor(id) }),
                    h("button", { type: "button", class: "secondary small", t: "mod.lower", "aria-label": `${t("mod.lower")}: ${this.nameOf(id)}`, onclick: () => s.lowerHand(id) }),
                  ),
                ),
              ),
            )
          : h("p", { t: "room.queue.empty" }),
        h("button", { type: "button", id: "btn-next", t: "mod.next", disabled: !s.hands.length, onclick: () => s.grantFloor() }),
      );
    }
    if (s.can("admit")) {
      const locked = Boolean(s.consultation?.locked);
      sections.push(h("div", { class: "button-row" }, h("button", { type: "button", class: "secondary", id: "btn-lock", t: locked ? "mod.unlock" : "mod.lock", onclick: () => s.lock(!locked) })));
    }
    if (s.can("remove")) {
      sections.push(
        h("div", { class: "button-row" }, h("button", { type: "button", class: "danger", id: "btn-end", t: "mod.end", onclick: () => {
          if (window.confirm(t("mod.end.confirm"))) s.end();
        } })),
      );
    }
    return sections;
  }

  // ---------------- events ----------------

  onChat(message) {
    if (this.panel === "chat") this.updatePanel();
    else this.unread += 1;
    this.updateControls();
    announce(`${message.name}: ${message.text}`);
  }

  onNotice(detail) {
    const text = detail.key ? t(detail.key) : errorMessage(detail.code);
    replace(
      this.noticeBar,
      h("span", {}, text),
      detail.unmute ? [" ", h("button", { type: "button", class: "small", t: "room.unmute.accept", onclick: () => {
        this.noticeBar.hidden = true;
        this.session.setMic(true);
      } })] : null,
    );
    this.noticeBar.hidden = false;
    clearTimeout(this.noticeTimer);
    if (!detail.unmute) this.noticeTimer = setTimeout(() => (this.noticeBar.hidden = true), 8000);
    this.update();
  }

  onReconnecting() {
    setText(this.reconnecting, "room.reconnecting");
    this.reconnecting.hidden = false;
  }

  onReconnected() {
    setText(this.reconnecting, "room.reconnected");
    setTimeout(() => (this.reconnecting.hidden = true), 3000);
    this.update();
  }
}
