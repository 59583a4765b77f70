// The staff console: log in, create a consultation from a template, invite participants and
// show their link / ID / passcode, then enter the room as staff (moderation lives in room.js).
import { api, ApiError, forgetToken } from "./api.js";
import { announce, focusHeading, h, replace } from "./dom.js";
import { errorMessage } from "./errors.js";
import { formatRange, label, onLangChange, t } from "./i18n.js";
import { enterConsultation } from "./join.js";

let templates = null;
let stopLang = () => {};
let inRoom = false;

/** The staff console at /staff; the open consultation is in the hash (#c=12345678). */
export async function renderStaff(main) {
  main.className = "wide";
  window.addEventListener("hashchange", () => {
    if (!inRoom) show(main);
  });
  await show(main);
}

async function show(main, notice) {
  stopLang();
  try {
    const me = await api("GET", "/api/me");
    if (!templates) templates = (await api("GET", "/api/templates")).templates;
    const id = new URLSearchParams(location.hash.slice(1)).get("c");
    if (id) await renderConsultation(main, me.staff, id, notice);
    else await renderDashboard(main, me.staff, notice);
  } catch (error) {
    if (error instanceof ApiError && error.status === 401) renderLogin(main);
    else renderProblem(main, error);
  }
  stopLang = onLangChange(() => show(main));
}

function problemBox(error) {
  const message =
    typeof error === "string" ? error : error instanceof ApiError ? errorMessage(error.code) : t("err.internal");
  return h("div", { class: "notice error", role: "alert", id: "staff-error", tabindex: "-1" }, h("p", {}, message));
}

function renderProblem(main, error) {
  replace(main, h("h1", { t: "staff.title" }), problemBox(error));
}

function field(id, key, input, hintKey) {
  return h(
    "div",
    { class: "field" },
    h("label", { for: id, t: key }),
    hintKey ? h("span", { class: "hint", id: `${id}-hint`, t: hintKey }) : null,
    input,
  );
}

function renderLogin(main, error, loginName = "") {
  const form = h(
    "form",
    { id: "login-form" },
    field("login", "staff.login.name", h("input", { id: "login", type: "text", autocomplete: "username", required: true })),
    field("password", "staff.password", h("input", { id: "password", type: "password", autocomplete: "current-password", required: true })),
    h("button", { type: "submit", t: "staff.login.do" }),
  );
  replace(main, h("h1", { t: "staff.title" }), error ? problemBox(error) : null, h("h2", { t: "staff.login" }), form);
  form.elements.login.value = loginName;
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    try {
      await api("POST", "/api/login", { login: form.elements.login.value, password: form.elements.password.value });
      await show(main);
    } catch (err) {
      renderLogin(main, err, form.elements.login.value);
      main.querySelector("#staff-error").focus();
    }
  });
  if (!error) focusHeading(main);
}

function header(staff) {
  return h(
    "div",
    { class: "button-row", style: null },
    h("span", { class: "lead" }, t("staff.hello", { name: staff.display_name })),
    h("button", {
      type: "button",
      class: "secondary small",
      id: "logout",
      t: "staff.logout",
      onclick: async () => {
        await api("POST", "/api/logout").catch(() => {});
        forgetToken();
        location.hash = "";
        location.reload();
      },
    }),
  );
}

function localDateTimeValue(date) {
  const pad = (n) => String(n).padStart(2, "0");
  return `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())}T${pad(date.getHours())}:${pad(date.getMinutes())}`;
}

/** A datetime-local value as ISO 8601 with the browser's offset. */
function withOffset(value) {
  const date = new Date(value);
  const offset = -date.getTimezoneOffset();
  const sign = offset >= 0 ? "+" : "-";
  const pad = (n) => String(Math.floor(Math.abs(n))).padStart(2, "0");
  return `${value}:00${sign}${pad(offset / 60)}:${pad(offset % 60)}`;
}

function stateTag(state) {
  return h("span", { class: "tag" }, t(`staff.state.${state}`));
}

async function renderDashboard(main, staff, notice) {
  const list = (await api("GET", "/api/consultations")).consultations;
  const templateSelect = h(
    "select",
    { id: "template", required: true },
    templates.map((tpl) => h("option", { value: tpl.name }, label(tpl.label))),
  );
  const duration = h("input", { id: "duration", type: "number", min: "5", max: "1440", inputmode: "numeric" });
  const setDuration = () => {
    const tpl = templates.find((x) => x.name === templateSelect.value);
    if (tpl) {
      duration.value = tpl.default_duration_minutes;
      duration.max = tpl.max_duration_minutes;
    }
  };
  templateSelect.addEventListener("change", setDuration);
  setDuration();
  const now = new Date();
  now.setSeconds(0, 0);
  const form = h(
    "form",
    { id: "create-form", class: "card" },
    h("h2", { t: "staff.create" }),
    field("template", "staff.template", templateSelect),
    field("title", "staff.consult.title", h("input", { id: "title", type: "text", maxlength: "200", required: true, "aria-describedby": "title-hint" }), "staff.consult.title.hint"),
    field("starts", "staff.starts", h("input", { id: "starts", type: "datetime-local", value: localDateTimeValue(now), required: true })),
    field("duration", "staff.duration", duration),
    h("button", { type: "submit", t: "staff.create.do" }),
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    try {
      const created = await api("POST", "/api/consultations", {
        template: templateSelect.value,
        title: form.elements.title.value.trim(),
        starts_at: withOffset(form.elements.starts.value),
        duration_minutes: Number(duration.value) || undefined,
      });
      announce(t("staff.created"));
      location.hash = `c=${created.id}`;
    } catch (error) {
      replace(form.querySelector(".form-error") || form.appendChild(h("div", { class: "form-error" })), problemBox(error));
      form.querySelector("#staff-error").focus();
    }
  });
  replace(
    main,
    h("h1", { t: "staff.title" }),
    header(staff),
    notice ? problemBox(notice) : null,
    h("div", { class: "grid-2" }, form, h("section", { "aria-labelledby": "list-title" }, h("h2", { id: "list-title", t: "staff.list" }), consultationList(list))),
  );
  focusHeading(main);
}

function consultationList(list) {
  if (!list.length) return h("p", { t: "staff.list.empty" });
  return h(
    "ul",
    { class: "people", id: "consultation-list" },
    list.map((c) =>
      h(
        "li",
        {},
        h("div", { class: "who" }, c.title),
        h("div", { class: "state" }, `${label(c.template_label)} · ${formatRange(c.starts_at, c.ends_at)} · ${t("staff.id")} ${c.id} · `, stateTag(c.state)),
        h("div", { class: "actions" }, h("a", { class: "button secondary small", href: `#c=${c.id}`, "aria-label": `${t("staff.open")}: ${c.title}`, t: "staff.open" })),
      ),
    ),
  );
}

function templateOf(name) {
  return templates.find((tpl) => tpl.name === name);
}

async function renderConsultation(main, staff, id, notice, invited) {
  const c = await api("GET", `/api/consultations/${encodeURIComponent(id)}`);
  const tpl = templateOf(c.template);
  const inviteRoles = tpl.roles.filter((r) => r.join.some((j) => j !== "staff"));
  const staffRoles = tpl.roles.filter((r) => r.join.includes("staff"));
  const roleSelect = h("select", { id: "role", required: true }, inviteRoles.map((r) => h("option", { value: r.name }, label(r.label))));
  const form = h(
    "form",
    { id: "invite-form", class: "card" },
    h("h2", { t: "staff.invite" }),
    field("role", "staff.role", roleSelect),
    field("person-name", "staff.person.name", h("input", { id: "person-name", type: "text", maxlength: "100", autocomplete: "off" })),
    field("person-email", "staff.person.email", h("input", { id: "person-email", type: "email", autocomplete: "off", "aria-describedby": "person-email-hint" }), "staff.person.email.hint"),
    h("button", { type: "submit", t: "staff.invite.do" }),
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const body = { role: roleSelect.value };
    const name = form.elements["person-name"].value.trim();
    const email = form.elements["person-email"].value.trim();
    if (name) body.name = name;
    if (email) body.email = email;
    try {
      const participant = await api("POST", `/api/consultations/${encodeURIComponent(id)}/participants`, body);
      await renderConsultation(main, staff, id, null, participant);
      main.querySelector("#invite-result").focus();
    } catch (error) {
      await renderConsultation(main, staff, id, error);
      main.querySelector("#staff-error").focus();
    }
  });
  const enterRole = h("select", { id: "enter-role" }, staffRoles.map((r) => h("option", { value: r.name }, label(r.label))));
  const closed = c.state === "ended" || c.state === "cancelled";
  replace(
    main,
    h("p", {}, h("a", { href: "#", t: "staff.back" })),
    h("h1", { id: "consultation-title" }, c.title),
    header(staff),
    notice ? problemBox(notice) : null,
    h(
      "dl",
      { class: "facts" },
      h("dt", { t: "staff.id" }),
      h("dd", { id: "consultation-id" }, c.id),
      h("dt", { t: "staff.template" }),
      h("dd", {}, label(c.template_label)),
      h("dt", { t: "lobby.time" }),
      h("dd", {}, formatRange(c.starts_at, c.ends_at)),
      h("dt", { t: "staff.state" }),
      h("dd", {}, stateTag(c.state)),
    ),
    closed
      ? null
      : h(
          "div",
          { class: "card" },
          field("enter-role", "staff.enter.role", enterRole),
          h("button", { type: "button", id: "enter-as-staff", t: "staff.enter", onclick: () => enterRoom(main, c, enterRole.value) }),
        ),
    invited ? inviteResult(invited) : null,
    h("div", { class: "grid-2" }, closed ? null : form, participantList(c, tpl)),
    closed
      ? null
      : h("div", { class: "button-row" }, h("button", { type: "button", class: "danger", id: "cancel-consultation", t: "staff.cancel", onclick: async () => {
          if (!window.confirm(t("staff.cancel.confirm"))) return;
          await api("POST", `/api/consultations/${encodeURIComponent(id)}/cancel`).catch((error) => show(main, error));
          show(main);
        } })),
  );
  if (!invited && !notice) focusHeading(main);
}

function inviteResult(p) {
  const join = p.join || {};
  const link = join.link ? new URL(join.link, location.origin).href : "";
  return h(
    "section",
    { class: "notice ok", id: "invite-result", tabindex: "-1", "aria-labelledby": "invite-result-title" },
    h("strong", { id: "invite-result-title", t: "staff.invite.done" }),
    h(
      "dl",
      { class: "facts" },
      h("dt", { t: "staff.person.name" }),
      h("dd", {}, p.display_name || p.name || ""),
      h("dt", { t: "staff.link" }),
      h("dd", { class: "secret", id: "invite-link" }, link),
      h("dt", { t: "staff.joinid" }),
      h("dd", { class: "secret", id: "invite-join-id" }, join.join_id || ""),
      h("dt", { t: "staff.passcode" }),
      h("dd", { class: "secret", id: "invite-passcode" }, join.passcode || ""),
    ),
  );
}

function participantList(c, tpl) {
  const roleLabel = (name) => label(tpl.roles.find((r) => r.name === name)?.label) || name;
  return h(
    "section",
    { "aria-labelledby": "participants-title" },
    h("h2", { id: "participants-title", t: "staff.participants" }),
    c.participants.length
      ? h(
          "ul",
          { class: "people", id: "participant-list" },
          c.participants.map((p) =>
            h(
              "li",
              {},
              h("div", { class: "who" }, p.display_name, p.anonymous ? [" ", h("span", { class: "tag" }, t("staff.anonymous"))] : null),
              h("div", { class: "state" }, [roleLabel(p.role), p.name && p.name !== p.display_name ? p.name : null, p.email || null, p.invitation ? `${t("staff.joinid")} ${p.invitation.join_id}` : null].filter(Boolean).join(" · ")),
            ),
          ),
        )
      : h("p", { t: "staff.participants.empty" }),
  );
}

function enterRoom(main, c, role) {
  inRoom = true;
  stopLang();
  main.className = "";
  enterConsultation(
    main,
    { via: "staff", consultation: c.id, role },
    (message) => {
      inRoom = false;
      main.className = "wide";
      show(main, message);
    },
    { againHref: `/staff#c=${c.id}` },
  );
}
