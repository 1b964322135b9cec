// The colour theme: light or dark, as the user chose (remembered in this browser) or else as the
// system prefers. A classic script loaded in <head>, so the page is drawn in the right theme from
// the first frame; it adds the switch to the page's top bar once the page is parsed.
(() => {
  const KEY = "lockstep.theme";
  const system = matchMedia("(prefers-color-scheme: light)");
  const chosen = () => {
    const t = localStorage.getItem(KEY);
    return t === "light" || t === "dark" ? t : null;
  };
  const current = () => chosen() ?? (system.matches ? "light" : "dark");
  const apply = () => {
    document.documentElement.dataset.theme = current();
    const button = document.getElementById("theme-toggle");
    if (button) {
      const other = current() === "dark" ? "light" : "dark";
      button.textContent = other === "light" ? "☀" : "☾";
      button.title = `Switch to the ${other} theme`;
      button.setAttribute("aria-label", `Switch to the ${other} theme`);
    }
  };
  apply();
  system.addEventListener("change", apply);
  addEventListener("storage", (e) => e.key === KEY && apply());
  document.addEventListener("DOMContentLoaded", () => {
    const bar = document.querySelector(".topbar");
    if (!bar) return;
    const button = document.createElement("button");
    button.id = "theme-toggle";
    button.type = "button";
    button.className = "icon";
    button.addEventListener("click", () => {
      localStorage.setItem(KEY, current() === "dark" ? "light" : "dark");
      apply();
    });
    bar.append(button);
    apply();
  });
})();
