// The entry point: language toggle, and one screen per path (see server/pages.py).
import { applyLang, currentLang, onLangChange, setLang } from "./i18n.js";
import { renderCheckPage, renderJoinPage, renderLinkPage, renderStart } from "./join.js";
import { renderStaff } from "./staff.js";

function setupLanguageToggle() {
  const toggle = document.getElementById("lang-toggle");
  const update = () => toggle.setAttribute("lang", currentLang() === "ja" ? "en" : "ja");
  toggle.addEventListener("click", () => setLang(currentLang() === "ja" ? "en" : "ja"));
  onLangChange(update);
  update();
}

function route(main) {
  const path = location.pathname;
  const link = path.match(/^\/j\/([^/]+)$/);
  if (link) return renderLinkPage(main, decodeURIComponent(link[1]));
  if (path === "/join") return renderJoinPage(main);
  if (path === "/check") return renderCheckPage(main);
  if (path === "/staff") return renderStaff(main);
  return renderStart(main);
}

setupLanguageToggle();
applyLang(document);
route(document.getElementById("main"));
