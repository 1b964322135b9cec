// The queue panel: add by URL, thumbnails and titles, drag to reorder (or the ↑ ↓ buttons, for
// keyboards and phones), remove, who added what.

import { formatTime } from "./format.js";
import { saveItem } from "./mine.js";
import { h, icon, thumbnail, toast } from "./ui.js";

export class QueueView {
  constructor({ list, form, input, model, send, onCount }) {
    Object.assign(this, { list, form, input, model, send, onCount });
    this.dragged = null;
    form.addEventListener("submit", async (e) => {
      e.preventDefault();
      const url = input.value.trim();
      if (!url) return;
      try {
        const ack = await send({ t: "queue_add", url });
        input.value = "";
        // Into an empty room it plays at once (its event came ahead of the ack).
        toast(ack.item_id && ack.item_id === this.model.current?.id ? "Playing now" : "Added to the queue");
      } catch (err) {
        toast(err.message, "error");
      }
    });
  }

  command(frame) {
    this.send(frame).catch((err) => toast(err.message, "error"));
  }

  itemEl(item, index) {
    const me = this.model.you?.user_id;
    const mayQueue = this.model.may("queue");
    const mayRemove = this.model.isModerator || (mayQueue && item.added_by === me);
    const last = this.model.queue.length - 1;
    const thumb = thumbnail(item.thumbnail, "▶");
    const length = item.duration ? `\u00a0· ${formatTime(item.duration)}` : "";
    const li = h(
      "li",
      { draggable: mayQueue ? "true" : null, dataset: { id: item.id } },
      thumb,
      h(
        "div",
        {},
        h("div", { class: "title", text: item.title, title: item.url }),
        h(
          "div",
          { class: "sub" },
          h("span", { class: "by", text: `added by ${item.added_by_name}` }),
          // The length never gives way to a long name.
          length ? h("span", { class: "len", text: length }) : null,
          item.kind === "upload" && item.status === "pending" ? h("span", { class: "len", text: " · being prepared" }) : null,
        ),
      ),
      h(
        "div",
        { class: "ops" },
        h("button", { class: "icon", title: "Save to my library", "aria-label": `Save ${item.title} to my library`, onclick: () => saveItem(item, "library") }, icon("star")),
        h("button", { class: "icon", title: "Watch later", "aria-label": `Save ${item.title} to watch later`, onclick: () => saveItem(item, "watch_later") }, icon("clock")),
        mayQueue && index > 0
          ? h("button", { class: "icon", title: "Move up", "aria-label": `Move ${item.title} up`, text: "↑", onclick: () => this.command({ t: "queue_move", item_id: item.id, index: index - 1 }) })
          : null,
        mayQueue && index < last
          ? h("button", { class: "icon", title: "Move down", "aria-label": `Move ${item.title} down`, text: "↓", onclick: () => this.command({ t: "queue_move", item_id: item.id, index: index + 1 }) })
          : null,
        mayRemove
          ? h("button", { class: "icon danger", title: "Remove", "aria-label": `Remove ${item.title}`, text: "✕", onclick: () => this.command({ t: "queue_remove", item_id: item.id }) })
          : null,
      ),
    );
    if (mayQueue) {
      li.addEventListener("dragstart", (e) => {
        this.dragged = item.id;
        li.classList.add("dragging");
        e.dataTransfer.effectAllowed = "move";
        e.dataTransfer.setData("text/plain", item.id);
      });
      li.addEventListener("dragend", () => {
        li.classList.remove("dragging");
        this.dragged = null;
        // Changes that came during the drag are shown now.
        if (this.renderPending) this.render();
      });
      li.addEventListener("dragover", (e) => {
        e.preventDefault();
        li.classList.add("drop-before");
      });
      li.addEventListener("dragleave", () => li.classList.remove("drop-before"));
      li.addEventListener("drop", (e) => {
        e.preventDefault();
        li.classList.remove("drop-before");
        const from = this.model.queue.findIndex((i) => i.id === this.dragged);
        if (this.dragged && this.dragged !== item.id && from >= 0) {
          // Dropping on an item puts the dragged one where that item is.
          this.command({ t: "queue_move", item_id: this.dragged, index });
        }
        this.dragged = null;
      });
    }
    return li;
  }

  render() {
    // Rebuilding the list under a drag would drop it (its elements go): wait for the drag's end.
    this.renderPending = this.dragged !== null;
    if (this.renderPending) return;
    const items = this.model.queue.map((item, i) => this.itemEl(item, i));
    if (items.length === 0) items.push(h("li", { class: "empty-note", text: "The queue is empty." }));
    this.list.replaceChildren(...items);
    this.input.disabled = !this.model.may("queue");
    this.input.placeholder = this.input.disabled ? "Only moderators add videos here" : "Paste a YouTube or video URL";
    this.onCount?.(this.model.queue.length);
  }
}
