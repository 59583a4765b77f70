// The waiting room: what the consultation is, when, and what to have at hand.
import { focusHeading, h, replace } from "./dom.js";
import { formatRange, label, onLangChange } from "./i18n.js";

/** Draw the lobby from the server's `lobby` message. */
export function renderLobby(main, session, message) {
  main.className = "";
  const consultation = message.consultation || {};
  const you = message.you || {};
  const checklist = consultation.checklist || [];
  const when = h("dd", { id: "lobby-time" });
  const list = h("ul", { class: "checklist", id: "checklist" });
  const draw = () => {
    if (consultation.starts_at) when.textContent = formatRange(consultation.starts_at, consultation.ends_at);
    replace(list, checklist.map((item) => h("li", {}, label(item))));
  };
  draw();
  const stop = onLangChange(draw);
  session.addEventListener("joined", stop, { once: true });
  session.addEventListener("ended", stop, { once: true });

  replace(
    main,
    h("h1", { t: "lobby.title" }),
    h(
      "div",
      { class: "notice", role: "status" },
      h("strong", { t: "lobby.waiting" }),
      h("p", { t: "lobby.lead" }),
    ),
    h(
      "dl",
      { class: "facts" },
      h("dt", { t: "lobby.consultation" }),
      h("dd", { id: "lobby-title" }, consultation.title || ""),
      consultation.starts_at ? [h("dt", { t: "lobby.time" }), when] : null,
      you.name ? [h("dt", { t: "lobby.you" }), h("dd", {}, you.name)] : null,
    ),
    checklist.length
      ? h(
          "section",
          { class: "card", "aria-labelledby": "checklist-title" },
          h("h2", { id: "checklist-title", t: "lobby.checklist" }),
          list,
        )
      : null,
    h(
      "div",
      { class: "button-row" },
      h("button", { type: "button", class: "secondary", t: "lobby.leave", onclick: () => session.leave() }),
    ),
  );
  focusHeading(main);
}
