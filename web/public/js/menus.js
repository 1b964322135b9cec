// Pop-up menus made of <details class="menu"><summary>…</summary><div class="menu-items">…</div>.
// One open at a time; Escape or a click outside closes it and gives focus back to its button;
// the open menu is placed inside the viewport (fixed, so a scrolling list cannot clip it).

const MARGIN = 8;

function place(menu) {
  const items = menu.querySelector(".menu-items");
  const button = menu.querySelector("summary");
  if (!items || !button) return;
  const at = button.getBoundingClientRect();
  const width = items.offsetWidth;
  const height = items.offsetHeight;
  const left = Math.max(MARGIN, Math.min(at.right - width, innerWidth - width - MARGIN));
  const below = at.bottom + 4;
  const top = below + height + MARGIN <= innerHeight ? below : Math.max(MARGIN, at.top - height - 4);
  Object.assign(items.style, { position: "fixed", left: `${left}px`, top: `${top}px`, right: "auto" });
}

function close(menu, { focus = true } = {}) {
  if (!menu.open) return;
  menu.open = false;
  if (focus) menu.querySelector("summary")?.focus();
}

/** Wires every menu under `root`, now and later. Call once per page. */
export function setUpMenus(root = document) {
  root.addEventListener(
    "toggle",
    (e) => {
      const menu = e.target;
      if (!(menu instanceof HTMLDetailsElement) || !menu.classList.contains("menu") || !menu.open) return;
      for (const other of root.querySelectorAll("details.menu[open]")) if (other !== menu) close(other, { focus: false });
      place(menu);
      menu.querySelector(".menu-items button, .menu-items a")?.focus();
    },
    true,
  );
  root.addEventListener("keydown", (e) => {
    if (e.key !== "Escape") return;
    const open = root.querySelector("details.menu[open]");
    if (!open) return;
    e.preventDefault();
    e.stopPropagation();
    close(open);
  }, true);
  root.addEventListener("click", (e) => {
    for (const menu of root.querySelectorAll("details.menu[open]")) {
      if (!menu.contains(e.target)) close(menu, { focus: false });
      // A chosen item closes its menu too.
      else if (e.target.closest(".menu-items button")) close(menu);
    }
  });
  // A fixed menu would float away from its button: scrolling closes it.
  root.addEventListener("scroll", (e) => {
    for (const menu of root.querySelectorAll("details.menu[open]")) if (!menu.contains(e.target)) close(menu, { focus: false });
  }, true);
  addEventListener("resize", () => {
    for (const menu of root.querySelectorAll("details.menu[open]")) close(menu, { focus: false });
  });
}
