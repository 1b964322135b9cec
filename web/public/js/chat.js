// The chat panel: history on join, older lines when scrolled to the top, system lines, mentions
// of me highlighted. Everything people type is inserted as text. A line typed while the
// connection is down stays in the box, marked unsent, and goes out once the connection is back.

import { api } from "./api.js";
import { clockTime, mentions } from "./format.js";
import { h, toast } from "./ui.js";

/** Lines fetched per scroll-back page. */
const PAGE = 50;

export class ChatView {
  /**
   * @param {object} o
   * @param {HTMLElement} o.note   where "not sent" is said
   * @param {() => boolean} o.online  whether commands can be sent now
   */
  constructor({ log, form, input, note, model, roomId, send, online }) {
    Object.assign(this, { log, form, input, note, model, roomId, send, online });
    /** The text kept in the box while offline, to send when the connection is back. */
    this.unsent = null;
    input.addEventListener("input", () => {
      // An edited line is the user's again: it goes when they press Send.
      if (input.value !== this.unsent) this.setUnsent(null);
    });
    this.rendered = new Set();
    this.hasOlder = true;
    this.loadingOlder = false;
    form.addEventListener("submit", (e) => {
      e.preventDefault();
      this.submit();
    });
    log.addEventListener("scroll", () => {
      if (log.scrollTop < 40) this.loadOlder();
    });
  }

  setUnsent(text, message = "Not sent yet: you are offline. It goes out when the connection is back.") {
    this.unsent = text;
    this.note.hidden = text === null;
    this.note.textContent = text === null ? "" : message;
    this.input.toggleAttribute("aria-invalid", text !== null);
  }

  async submit() {
    const text = this.input.value;
    if (!text.trim()) return;
    if (!this.online()) {
      this.setUnsent(text);
      return;
    }
    this.setUnsent(null);
    this.input.value = "";
    try {
      await this.send({ t: "chat", text });
    } catch (err) {
      if (this.input.value === "") this.input.value = text;
      if (err.code === "offline") this.setUnsent(text);
      else if (err.code === "connection_lost" || err.code === "timeout") {
        // It may or may not have reached the room: say so rather than send it twice.
        this.note.hidden = false;
        this.note.textContent = "The connection dropped while sending: check the chat before you send it again.";
      } else toast(err.message, "error");
    }
  }

  /** The connection is back: sends the line kept while offline, if it is still in the box. */
  flushUnsent() {
    if (this.unsent !== null && this.input.value === this.unsent) this.submit();
    else this.setUnsent(null);
  }

  lineEl(line) {
    const cls = ["line"];
    if (line.system) cls.push("system");
    if (line.system === "joined" || line.system === "left") cls.push("presence");
    else if (this.mentionsMe(line)) cls.push("mention");
    return h(
      "li",
      { class: cls.join(" "), dataset: { id: line.id } },
      h("span", { class: "at", text: clockTime(line.at) }),
      line.system ? null : h("span", { class: "who", text: line.name ?? "?" }),
      h("span", { class: "text", text: line.text }),
    );
  }

  atBottom() {
    return this.log.scrollHeight - this.log.scrollTop - this.log.clientHeight < 60;
  }

  /** Renders everything (after a welcome). */
  renderAll() {
    this.rendered = new Set(this.model.chat.map((l) => l.id));
    this.log.replaceChildren(...this.model.chat.map((l) => this.lineEl(l)));
    this.hasOlder = true;
    this.log.scrollTop = this.log.scrollHeight;
  }

  /** Appends the lines not shown yet; returns them. */
  renderNew() {
    const stick = this.atBottom();
    const fresh = [];
    for (const line of this.model.chat) {
      if (this.rendered.has(line.id)) continue;
      this.rendered.add(line.id);
      this.log.append(this.lineEl(line));
      fresh.push(line);
    }
    if (stick) this.log.scrollTop = this.log.scrollHeight;
    return fresh;
  }

  /** Whether `line` is someone else's message that mentions me. */
  mentionsMe(line) {
    return !line.system && line.user_id !== this.model.you?.user_id && mentions(line.text, this.model.me?.name);
  }

  async loadOlder() {
    if (!this.hasOlder || this.loadingOlder || this.model.chat.length === 0) return;
    this.loadingOlder = true;
    try {
      const oldest = this.model.chat[0].id;
      const page = await api.get(`/api/rooms/${this.roomId}/chat?before=${oldest}&limit=${PAGE}`);
      this.hasOlder = page.has_more;
      const fresh = page.lines.filter((l) => !this.rendered.has(l.id));
      this.model.prependChat(fresh);
      const before = this.log.scrollHeight;
      for (const line of fresh) this.rendered.add(line.id);
      this.log.prepend(...fresh.map((l) => this.lineEl(l)));
      // Keep the lines the reader was looking at in place.
      this.log.scrollTop += this.log.scrollHeight - before;
    } catch (err) {
      toast(`Could not load older messages: ${err.message}`, "error");
    } finally {
      this.loadingOlder = false;
    }
  }
}
