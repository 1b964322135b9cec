// The seek bar's preview of uploads: while the pointer hovers over the bar or drags its thumb,
// the storyboard thumbnail of that moment shows above it (sprite sheets cut with CSS).

import { formatTime } from "./format.js";
import { cueAt, parseStoryboard } from "./storyboard.js";
import { h } from "./ui.js";

export class SeekPreview {
  /** `seek`: the range input; `duration()`: the current item's length in seconds. */
  constructor(seek, duration) {
    this.seek = seek;
    this.duration = duration;
    this.cues = [];
    this.trackUrl = null;
    this.at = h("span", { class: "at" });
    this.box = h("div", { class: "seek-preview", hidden: true }, this.at);
    seek.parentElement.append(this.box);
    const fromPointer = (e) => {
      const r = seek.getBoundingClientRect();
      this.show(((e.clientX - r.left) / r.width) * this.duration(), e.clientX - r.left);
    };
    seek.addEventListener("pointermove", fromPointer);
    seek.addEventListener("pointerleave", () => this.hide());
    seek.addEventListener("input", () => {
      const r = seek.getBoundingClientRect();
      const t = Number(seek.value);
      this.show(t, (t / (this.duration() || 1)) * r.width);
    });
    seek.addEventListener("change", () => this.hide());
  }

  /** Loads the storyboard of `item` (an upload), or clears it for anything else. */
  async setItem(item) {
    const url = item?.kind === "upload" ? `/media/uploads/${item.upload_id}/storyboard.vtt` : null;
    if (url === this.trackUrl) return;
    this.trackUrl = url;
    this.cues = [];
    this.hide();
    if (!url) return;
    try {
      const response = await fetch(url, { credentials: "same-origin" });
      if (!response.ok) return; // Not made yet: no previews, the bar still works.
      const cues = parseStoryboard(await response.text(), new URL(url, location.href).href);
      if (this.trackUrl === url) this.cues = cues;
    } catch {
      // No previews.
    }
  }

  show(time, x) {
    const cue = cueAt(this.cues, time);
    if (!cue || !Number.isFinite(time) || this.seek.disabled) {
      this.hide();
      return;
    }
    const s = this.box.style;
    s.width = `${cue.w}px`;
    s.height = `${cue.h}px`;
    s.backgroundImage = `url("${cue.url}")`;
    s.backgroundPosition = `-${cue.x}px -${cue.y}px`;
    const width = this.seek.getBoundingClientRect().width;
    s.left = `${Math.max(0, Math.min(width - cue.w, x - cue.w / 2))}px`;
    this.at.textContent = formatTime(time);
    this.box.dataset.sheet = cue.url;
    this.box.dataset.xywh = `${cue.x},${cue.y},${cue.w},${cue.h}`;
    this.box.hidden = false;
  }

  hide() {
    this.box.hidden = true;
  }
}
