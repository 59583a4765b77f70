// Client messages of docs/protocol.md, built in one place. When client/protocol.js (owned by
// the signaling work) offers the same builders, this module becomes a re-export of it.

/** @param {{via: string, token?: string, join_id?: string, passcode?: string, consultation?: string, role?: string, display_name?: string}} c */
export function join(c) {
  const message = { type: "join", via: c.via };
  for (const key of ["token", "join_id", "passcode", "consultation", "role", "display_name"]) {
    if (c[key]) message[key] = c[key];
  }
  return message;
}

export const leave = () => ({ type: "leave" });
export const ping = () => ({ type: "ping" });
export const offer = (sdp, sources) => ({ type: "offer", sdp, sources });
export const answer = (sdp) => ({ type: "answer", sdp });
export const setMedia = (media) => ({ type: "set_media", ...media });
export const raiseHand = () => ({ type: "raise_hand" });
export const lowerHand = (id) => (id ? { type: "lower_hand", id } : { type: "lower_hand" });
export const grantFloor = (id) => (id ? { type: "grant_floor", id } : { type: "grant_floor" });
export const revokeFloor = () => ({ type: "revoke_floor" });
export const admit = (id) => ({ type: "admit", id });
export const deny = (id) => ({ type: "deny", id });
export const mute = (id, kind) => ({ type: "mute", id, kind });
export const askUnmute = (id, kind) => ({ type: "ask_unmute", id, kind });
export const remove = (id) => ({ type: "remove", id });
export const lock = (locked) => ({ type: "lock", locked });
export const end = () => ({ type: "end" });
export const chat = (text, to = "all") => ({ type: "chat", text, to });
