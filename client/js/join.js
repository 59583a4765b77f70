// Start page, join by ID and passcode, join by personal link, and the way into a consultation:
// device check, then the live session (lobby, room, or a plain-language error back on the form).
import { renderDeviceCheck } from "./devices.js";
import { announce, focusHeading, h, replace } from "./dom.js";
import { errorMessage } from "./errors.js";
import { t } from "./i18n.js";
import { renderLobby } from "./lobby.js";
import { renderEnded, renderRoom } from "./room.js";
import { Session } from "./session.js";

/** The start page: two plain ways in. */
export function renderStart(main) {
  main.className = "";
  replace(
    main,
    h("h1", { t: "start.title" }),
    h("p", { class: "lead", t: "start.lead" }),
    h(
      "div",
      { class: "button-column" },
      h("a", { class: "button", href: "/join", t: "start.join" }),
      h("a", { class: "button secondary", href: "/check", t: "start.check" }),
    ),
    h("p", { t: "start.help" }),
    h("p", {}, h("a", { href: "/staff", t: "start.staff" })),
  );
}

/** The stand-alone device check (/check). */
export function renderCheckPage(main) {
  main.className = "";
  renderDeviceCheck(main);
  focusHeading(main);
}

function errorBox(message) {
  return h(
    "div",
    { class: "notice error", role: "alert", id: "join-error", tabindex: "-1" },
    h("strong", { t: "join.problem" }),
    h("p", {}, message),
  );
}

function textField(id, labelKey, hintKey, attrs = {}) {
  const hintId = `${id}-hint`;
  return h(
    "div",
    { class: "field" },
    h("label", { for: id, t: labelKey }),
    hintKey ? h("span", { class: "hint", id: hintId, t: hintKey }) : null,
    h("input", { id, name: id, type: "text", "aria-describedby": hintKey ? hintId : null, ...attrs }),
  );
}

/** Join with a personal ID and passcode (/join). */
export function renderJoinPage(main, state = {}) {
  main.className = "";
  const form = h(
    "form",
    { novalidate: true, id: "join-form" },
    textField("join-id", "join.id", "join.id.hint", {
      class: "code",
      inputmode: "numeric",
      autocomplete: "off",
      maxlength: "32",
      required: true,
    }),
    textField("passcode", "join.passcode", "join.passcode.hint", {
      class: "code",
      autocomplete: "off",
      maxlength: "64",
      required: true,
    }),
    textField("display-name", "join.name", "join.name.hint", { autocomplete: "name", maxlength: "100" }),
    h("div", { class: "button-row" }, h("button", { type: "submit", t: "join.next" })),
  );
  replace(
    main,
    h("h1", { t: "join.title" }),
    state.error ? errorBox(state.error) : null,
    form,
  );
  form.elements["join-id"].value = state.join_id || "";
  form.elements.passcode.value = state.passcode || "";
  form.elements["display-name"].value = state.display_name || "";
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const values = {
      join_id: form.elements["join-id"].value.replace(/[\s-]/g, "").replace(/[０-９]/g, (d) => String.fromCharCode(d.charCodeAt(0) - 0xfee0)),
      passcode: form.elements.passcode.value.trim(),
      display_name: form.elements["display-name"].value.trim(),
    };
    const missing = !values.join_id ? "join.missing.id" : !values.passcode ? "join.missing.passcode" : null;
    if (missing) {
      renderJoinPage(main, { ...values, error: t(missing) });
      const input = main.querySelector(missing === "join.missing.id" ? "#join-id" : "#passcode");
      input.setAttribute("aria-invalid", "true");
      main.querySelector("#join-error").focus();
      return;
    }
    enterConsultation(main, { via: "passcode", ...values }, (error) =>
      renderJoinPage(main, { ...values, error }),
    );
  });
  if (state.error) main.querySelector("#join-error").focus();
  else focusHeading(main);
}

/** Join with a personal link (/j/{token}). */
export function renderLinkPage(main, token, state = {}) {
  main.className = "";
  const form = h(
    "form",
    { novalidate: true, id: "link-form" },
    textField("display-name", "join.name", "join.name.hint", { autocomplete: "name", maxlength: "100" }),
    h("div", { class: "button-row" }, h("button", { type: "submit", t: "join.next" })),
  );
  replace(
    main,
    h("h1", { t: "join.link.title" }),
    state.error ? errorBox(state.error) : null,
    h("p", { class: "lead", t: "join.link.lead" }),
    form,
    h("p", {}, h("a", { href: "/join", t: "start.join" })),
  );
  form.elements["display-name"].value = state.display_name || "";
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const display_name = form.elements["display-name"].value.trim();
    enterConsultation(main, { via: "link", token, display_name }, (error) =>
      renderLinkPage(main, token, { display_name, error }),
    );
  });
  if (state.error) main.querySelector("#join-error").focus();
  else focusHeading(main);
}

/**
 * Device check, then join; `onJoinError(message)` draws the form again with the message.
 * Also used by the staff console (via "staff").
 */
export function enterConsultation(main, credentials, onJoinError, options = {}) {
  main.className = "";
  const check = renderDeviceCheck(main, {
    onEnter: (stream) => {
      check.stop();
      startSession(main, credentials, stream, onJoinError, options);
    },
  });
  focusHeading(main);
}

function startSession(main, credentials, stream, onJoinError, options) {
  const session = new Session(credentials, stream);
  let room = null;
  session.addEventListener("lobby", (event) => {
    renderLobby(main, session, event.detail);
  });
  session.addEventListener("joined", () => {
    room = renderRoom(main, session, options);
  });
  session.addEventListener("joinerror", (event) => {
    for (const track of stream.getTracks()) track.stop();
    const message = errorMessage(event.detail.code, event.detail);
    announce(message);
    onJoinError(message);
  });
  session.addEventListener("ended", (event) => {
    if (room) room.stop();
    // "join again" goes back where this person came in (their link, the ID form, the console)
    renderEnded(main, event.detail.reason, options.againHref || location.pathname);
  });
  session.start();
  window.madoguchi = session; // for the end-to-end tests and for support staff's console
  return session;
}
