// The people panel: who is here, their roles, who is buffering, and moderation menus for owners
// and moderators (only the actions the server would allow are offered).

import { h, toast } from "./ui.js";
import { desktopNote } from "./format.js";

const RANK = { viewer: 0, moderator: 1, owner: 2 };
/** Members read per "Show more". */
const PAGE = 100;

/** A member row's menu controls, in order: its summary, then its items. */
const menuControls = (row) => [...row.querySelectorAll("details.menu summary, details.menu .menu-items button")];

export class MembersView {
  constructor({ list, model, send, onCount }) {
    Object.assign(this, { list, model, send, onCount });
  }

  act(frame, done, ms) {
    this.send(frame)
      .then(() => done && toast(done, "info", ms))
      .catch((err) => toast(err.message, "error"));
  }

  /** What to say after a ban. The server bars the banned user's address for a while, but it
   * never changes the invite link by itself: in a private room the owner is told how. */
  bannedMessage(name) {
    if (this.model.settings?.visibility !== "private") return `${name} was banned`;
    const how = this.model.me?.role === "owner"
      ? "make a new one with “New invite link” in Settings"
      : "ask the owner to make a new one";
    return `${name} was banned. They may still have the invite link: ${how}.`;
  }

  menu(member) {
    const me = this.model.me;
    if (!me || member.user_id === me.user_id) return null;
    const myRank = RANK[me.role] ?? 0;
    const theirs = RANK[member.role] ?? 0;
    const items = [];
    const id = member.user_id;
    if (me.role === "owner") {
      items.push(
        member.role === "moderator"
          ? h("button", { text: "Remove moderator", onclick: () => this.act({ t: "demote", user_id: id }) })
          : h("button", { text: "Make moderator", onclick: () => this.act({ t: "promote", user_id: id }) }),
      );
    }
    if (myRank >= 1 && myRank > theirs) {
      items.push(
        h("button", { text: member.muted ? "Unmute" : "Mute", onclick: () => this.act({ t: member.muted ? "unmute" : "mute", user_id: id }) }),
        h("button", { text: "Kick", onclick: () => this.act({ t: "kick", user_id: id }, `${member.name} was removed`) }),
        h("button", {
          class: "danger",
          text: "Ban",
          onclick: () => {
            if (confirm(`Ban ${member.name} from this room?`)) this.act({ t: "ban", user_id: id }, this.bannedMessage(member.name), 12000);
          },
        }),
      );
    }
    if (items.length === 0) return null;
    return h("details", { class: "menu" }, h("summary", { "aria-label": `Actions for ${member.name}`, text: "⋯" }), h("div", { class: "menu-items" }, items));
  }

  /** Reads the next page of a room bigger than the window the server keeps us told of. */
  more() {
    const offset = this.model.knownMembers.length;
    this.send({ t: "members", offset, limit: PAGE })
      .then((page) => {
        this.model.addMemberPage(page);
        this.render();
      })
      .catch((err) => toast(err.message, "error"));
  }

  /** How far the member's player was from the room lately, as they reported it. */
  syncBadge(member) {
    // Its player cannot play the item (refused, or its loads kept failing): no offset to show.
    if (member.cannot_play) {
      return h("span", { class: "badge cannot-play", title: `${member.name}'s player cannot play this video; the room does not wait for them`, text: "cannot play" });
    }
    // Only while the room plays: the figures tell how the member kept up then (`renderSpread`).
    const sync = this.model.playing ? this.model.sync.get(member.user_id) : null;
    if (!sync) return null;
    const off = Math.round(sync.p50_ms);
    const level = sync.p95_ms <= 20 ? "good" : sync.p95_ms <= 100 ? "warn" : "bad";
    return h("span", {
      class: `badge sync ${level}`,
      title: `${member.name}'s player was ${off} ms from the room (median of the last 5 s; 95% within ${Math.round(sync.p95_ms)} ms)`,
      text: `±${off} ms`,
    });
  }

  /** A desktop viewer's marker: their player and, on hover and for screen readers, the file
   * they have open; marked when it is not the room's item. */
  desktop(member) {
    const note = desktopNote(member.desktop, this.model.current);
    if (!note) return null;
    const title = note.mismatch
      ? `Watching in ${note.label}: ${note.file}. Its length differs from the room's video: it may be another file.`
      : `Watching in ${note.label}: ${note.file}`;
    return [
      h("span", { class: "badge desktop", title, text: "desktop" }),
      note.mismatch ? h("span", { class: "badge mismatch", title, text: "other file" }) : null,
      h("span", { class: "desktop-file", title, text: `${note.label} · ${note.file}` }),
    ];
  }

  render() {
    const members = this.model.knownMembers.sort(
      (a, b) => (RANK[b.role] ?? 0) - (RANK[a.role] ?? 0) || a.name.localeCompare(b.name),
    );
    const hidden = this.model.memberCount - members.length;
    const more = hidden > 0
      ? h("li", { class: "more" }, h("button", { text: `Show more (${hidden} not shown)`, onclick: () => this.more() }))
      : null;
    // A member's menu open (a moderator about to mute or kick) stays open, with the focus where it
    // was: the list is drawn again whenever the sync figures come (every 2 s while the room
    // plays), and the menu closed under the user's pointer.
    const openRow = this.list.querySelector("details.menu[open]")?.closest("li");
    const focused = openRow ? menuControls(openRow).indexOf(document.activeElement) : -1;
    this.list.replaceChildren(
      ...members.map((m) =>
        h(
          "li",
          { dataset: { user: m.user_id } },
          h("span", { class: "name", text: m.user_id === this.model.you?.user_id ? `${m.name} (you)` : m.name }),
          this.syncBadge(m),
          this.desktop(m),
          // Syncplay's readiness is a choice of its user, not buffering.
          m.ready === false ? h("span", { class: "badge buffering", text: m.desktop ? "not ready" : "buffering" }) : null,
          m.muted ? h("span", { class: "badge", text: "muted" }) : null,
          m.role !== "viewer" ? h("span", { class: `badge ${m.role}`, text: m.role }) : null,
          this.menu(m),
        ),
      ),
      ...(more ? [more] : []),
    );
    const row = openRow && [...this.list.children].find((li) => li.dataset.user === openRow.dataset.user);
    const menu = row?.querySelector("details.menu");
    if (menu) {
      menu.open = true;
      if (focused >= 0) menuControls(row)[focused]?.focus();
    }
    this.onCount?.(Math.max(this.model.memberCount, members.length));
  }
}
