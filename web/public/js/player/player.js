// Players: one interface, two implementations. Each is made with the client config, a promise:
// only hls.js and YouTube's API need it, and a plain video does not wait for it.
//
// Every adapter has:
//   load(item, from)    Promise, resolves when the item can be controlled; `from`: where to
//                       start (s; HTML5 fetches from there), the item's own start if absent
//   play()              Promise, rejects with a NotAllowedError when the browser blocks autoplay
//   pause(), seek(seconds)
//   currentTime, duration (NaN until known), paused, seeking, canPlay (enough data to play)
//   position            where the video really is (currentTime, or better where it moves in steps)
//   readingHeld         (optional) how long (s) a stepped reading has held its value
//   readingBehind       (optional) how far (s) a stepped reading lies behind its steps' line
//   rate (settable), fineRate (whether any rate works, or only a few fixed ones)
//   volume (0..1, settable), muted (settable)
//   element             the element to make fullscreen
//   bufferedEnd(t)      (optional) the end of the buffered stretch holding t, or null
//   destroy()
// and calls `onEvent(name, detail, how)` for "durationchange", "error", "ended", and (HTML5)
// "seeked"; an "error" says whether loading the item again may help (`how.retry`): one that says
// not means the player cannot play it (its play() then rejects at once, not as blocked).

import { Html5Player } from "./html5.js";
import { YouTubePlayer } from "./youtube.js";

/** The adapter class for a queue item. */
export function adapterFor(item) {
  return item.kind === "youtube" ? YouTubePlayer : Html5Player;
}

/**
 * The player for `item`: `current` if it is of the right kind, or a new one in `container` (the
 * old one destroyed). `early`: a <video> already fetching `item` (early.js), which a new HTML5
 * player takes as its own. The caller loads the item into it (`load`) and keeps it even when that
 * fails: the old one is gone, and loading again uses this one.
 */
export function playerFor(item, current, container, config, onEvent, early = null) {
  const Kind = adapterFor(item);
  if (current instanceof Kind) return current;
  current?.destroy();
  container.replaceChildren();
  return Kind === Html5Player ? new Html5Player(container, config, onEvent, early) : new Kind(container, config, onEvent);
}
