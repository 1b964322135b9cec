// The settings dialog (owner and moderators; owner-only fields are disabled for moderators, and
// the server enforces the same rules).

import { api } from "./api.js";
import { $, toast } from "./ui.js";

export function setUpSettings({ dialog, model, roomId, onInviteChanged, saveMore }) {
  const form = $("#settings-form", dialog);
  const error = $("#settings-error", dialog);

  function fill() {
    const s = model.settings;
    $("#set-name").value = s.name;
    $("#set-visibility").value = s.visibility;
    $("#set-playback").value = s.playback;
    $("#set-queue").value = s.queue;
    $("#set-vote").checked = s.skip_requires_vote;
    $("#set-ratio").value = Math.round(s.vote_skip_ratio * 100);
    $("#set-slow").value = s.chat_slow_mode_secs;
    $("#set-wait").checked = s.wait_for_everyone;
    applyVoting();
    $("#set-password").value = "";
    $("#set-clear-password").checked = false;
    $("#set-clear-password").disabled = !s.has_password;
    const owner = model.me?.role === "owner";
    $("#set-visibility").disabled = !owner;
    $("#owner-only").disabled = !owner;
    $("#owner-only").hidden = !owner;
    error.textContent = "";
  }

  /** The share of votes applies only when skipping needs a vote. */
  function applyVoting() {
    $("#set-ratio").disabled = !$("#set-vote").checked;
  }

  function open() {
    fill();
    dialog.showModal();
  }

  $("#settings-cancel").addEventListener("click", () => dialog.close());
  $("#set-vote").addEventListener("change", applyVoting);

  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    const owner = model.me?.role === "owner";
    const body = {
      name: $("#set-name").value,
      playback: $("#set-playback").value,
      queue: $("#set-queue").value,
      skip_requires_vote: $("#set-vote").checked,
      vote_skip_ratio: Math.min(100, Math.max(1, Number($("#set-ratio").value))) / 100,
      chat_slow_mode_secs: Math.max(0, Math.round(Number($("#set-slow").value))),
      wait_for_everyone: $("#set-wait").checked,
    };
    if (owner) {
      body.visibility = $("#set-visibility").value;
      if ($("#set-clear-password").checked) body.password = null;
      else if ($("#set-password").value) body.password = $("#set-password").value;
    }
    try {
      await api.patch(`/api/rooms/${roomId}`, body);
      if (owner) await saveMore?.();
      dialog.close();
      toast("Settings saved");
    } catch (err) {
      error.textContent = err.message;
    }
  });

  $("#new-invite").addEventListener("click", async () => {
    if (!confirm("Make a new invite link? The current one will stop working.")) return;
    try {
      const r = await api.post(`/api/rooms/${roomId}/invite`);
      onInviteChanged(r.invite_key, r.link);
      toast("New invite link made");
    } catch (err) {
      error.textContent = err.message;
    }
  });

  $("#delete-room").addEventListener("click", async () => {
    if (!confirm("Delete this room for everyone? This cannot be undone.")) return;
    try {
      await api.delete(`/api/rooms/${roomId}`);
      location.href = "/";
    } catch (err) {
      error.textContent = err.message;
    }
  });

  return { open };
}
