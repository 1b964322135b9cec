// The chat panel: history on join, older lines when scrolled to the top, system lines, mentions
// of me highlighted. Everything people type is inserted as text.

import { api } from "./api.js";
import { clockTime, mentions } from "./format.js";
import { h, toast } from "./ui.js";

/** Lines fetched per scroll-back page. */
const PAGE = 50;

export class ChatView {
  constructor({ log, form, input, model, roomId, send }) {
    Object.assign(this, { log, form, input, model, roomId, send });
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

  async submit() {
    const text = this.input.value;
    if (!text.trim()) return;
    this.input.value = "";
    try {
      await this.send({ t: "chat", text });
    } catch (err) {
      this.input.value = text;
      toast(err.message, "error");
    }
  }

  lineEl(line) {
    const me = this.model.me?.name;
    const cls = ["line"];
    if (line.system) cls.push("system");
    else if (line.user_id !== this.model.you?.user_id && mentions(line.text, me)) cls.push("mention");
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

  /** Appends the lines not shown yet. */
  renderNew() {
    const stick = this.atBottom();
    for (const line of this.model.chat) {
      if (this.rendered.has(line.id)) continue;
      this.rendered.add(line.id);
      this.log.append(this.lineEl(line));
    }
    if (stick) this.log.scrollTop = this.log.scrollHeight;
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
