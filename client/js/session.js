// One participant's live session as the UI sees it: the room state (participants, hands, floor,
// lobby, chat), the remote streams by participant, and reconnecting. The wire protocol and the
// negotiation with the SFU are client/protocol.js's (Connection, MediaLink); no DOM code here.
import * as P from "../protocol.js";

const PING_EVERY_MS = 15_000;
const PONG_WITHIN_MS = 10_000;

/** Where the signaling WebSocket is: the same origin as the page. */
function signalingUrl() {
  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  return `${scheme}//${location.host}/ws`;
}

/**
 * A live session. Events (CustomEvent, data in `detail`): lobby, joined, joinerror, state,
 * media, chat, notice, reconnecting, reconnected, ended.
 */
export class Session extends EventTarget {
  /**
   * @param {import("../protocol.js").Credentials} credentials
   * @param {MediaStream} localStream camera/microphone opened by the device check
   */
  constructor(credentials, localStream) {
    super();
    this.credentials = credentials;
    this.localStream = localStream || new MediaStream();
    this.conn = null;
    this.link = null;
    this.resumeToken = null;
    this.you = null;
    this.consultation = null;
    this.participants = new Map();
    this.hands = [];
    this.floor = { holder: null, ends_at: null, turn_seconds: null };
    this.lobby = [];
    this.clockOffset = 0;
    this.chats = [];
    this.remote = new Map(); // participant id -> {camera?, screen?, mic?} MediaStreams
    this.state = "idle"; // idle | connecting | lobby | joined | reconnecting | ended
    this.lostAt = 0;
    this.pingTimer = 0;
    this.screenTrack = null;
    this.negotiationErrors = [];
    this.mic = this.localStream.getAudioTracks().length > 0;
    this.camera = this.localStream.getVideoTracks().length > 0;
  }

  /** The peer connection to the SFU (for getStats in support and tests). */
  get pc() {
    return this.link ? this.link.pc : null;
  }

  /** mid -> TrackInfo of the last server offer. */
  get tracksByMid() {
    return this.link ? this.link.tracks : new Map();
  }

  emit(type, detail = {}) {
    this.dispatchEvent(new CustomEvent(type, { detail }));
  }

  /** Server time now (ms), corrected by the offset seen at join. */
  now() {
    return Date.now() + this.clockOffset;
  }

  can(permission) {
    return Boolean(this.you && this.you.permissions && this.you.permissions.includes(permission));
  }

  // ---------------- connection ----------------

  /** Open the connection and join with the credentials. */
  start() {
    this.state = "connecting";
    this.connect(this.credentials);
  }

  async connect(credentials) {
    const conn = new P.Connection(signalingUrl());
    this.conn = conn;
    for (const [type, handler] of Object.entries(this.handlers)) {
      conn.on(type, (message) => {
        if (conn === this.conn) handler.call(this, message);
      });
    }
    conn.on("close", (event) => this.onClose(conn, event));
    try {
      await conn.open();
    } catch {
      return; // the close event follows and decides what to do
    }
    let reply;
    try {
      reply = await conn.request(P.join(credentials));
    } catch (error) {
      if (conn === this.conn && error instanceof P.ProtocolError) this.onJoinFailed(error, credentials);
      return;
    }
    if (conn !== this.conn) return;
    this.startPing(conn);
    if (reply.type === "lobby") {
      this.resumeToken = reply.resume_token;
      this.state = "lobby";
      this.emit("lobby", reply);
    } else {
      this.onJoined(reply);
    }
  }

  onJoinFailed(error, credentials) {
    if (this.state === "reconnecting") {
      console.warn("resume refused", error.code);
      // a passing trouble: try again within the grace period; otherwise the place is gone
      if (["internal", "rate_limited", "media_unavailable"].includes(error.code)) {
        this.dropForReconnect(this.conn);
        return;
      }
      this.finish("lost");
      return;
    }
    this.state = "ended";
    this.conn.close(1000);
    this.emit("joinerror", { code: error.code, retry_after: error.detail.retry_after, via: credentials.via });
  }

  /** Drop the signaling connection on purpose, to come back with a fresh one. */
  dropForReconnect(conn) {
    conn.dropped = true;
    conn.close(4100);
  }

  startPing(conn) {
    clearInterval(this.pingTimer);
    this.pingTimer = setInterval(() => {
      const timer = setTimeout(() => this.dropForReconnect(conn), PONG_WITHIN_MS);
      conn.request(P.ping()).then(
        () => clearTimeout(timer),
        () => clearTimeout(timer),
      );
    }, PING_EVERY_MS);
  }

  onJoined(message) {
    const wasReconnecting = this.state === "reconnecting";
    this.state = "joined";
    this.resumeToken = message.resume_token;
    this.you = message.you;
    this.consultation = message.consultation;
    this.iceServers = message.ice_servers || [];
    this.clockOffset = message.server_time ? message.server_time - Date.now() : 0;
    this.participants = new Map(message.participants.map((p) => [p.id, p]));
    this.hands = message.hands || [];
    this.floor = message.floor || this.floor;
    this.lobby = message.lobby || [];
    this.emit(wasReconnecting ? "reconnected" : "joined", message);
    this.emit("state");
    this.startMedia();
  }

  onClose(conn, event) {
    if (conn !== this.conn) return;
    console.info("signaling closed", event.code, this.state);
    clearInterval(this.pingTimer);
    if (this.state === "ended") return;
    if (event.code === 4001) return this.finish("replaced");
    if (this.state === "connecting") {
      this.state = "ended";
      this.emit("joinerror", { code: "network", via: this.credentials.via });
      return;
    }
    if (conn.dropped) return this.reconnect(); // we closed it ourselves to come back
    if (this.state === "lobby" && event.code === 1000) return this.finish("denied");
    if (!P.Session.shouldResume(event.code)) return this.finish("lost");
    this.reconnect();
  }

  reconnect() {
    if (this.state !== "reconnecting") {
      this.state = "reconnecting";
      this.lostAt = Date.now();
      this.closeMedia();
      this.emit("reconnecting");
    }
    if (Date.now() - this.lostAt > P.RECONNECT_GRACE_MS + 5000) return this.finish("lost");
    const delay = Math.min(4000, 500 + (Date.now() - this.lostAt) / 4);
    setTimeout(() => {
      if (this.state !== "reconnecting") return;
      const credentials = this.resumeToken ? { via: "resume", token: this.resumeToken } : this.credentials;
      this.connect(credentials);
    }, delay);
  }

  finish(reason) {
    if (this.state === "ended") return;
    this.state = "ended";
    clearInterval(this.pingTimer);
    this.closeMedia();
    for (const track of this.localStream.getTracks()) track.stop();
    if (this.screenTrack) this.screenTrack.stop();
    if (this.conn) this.conn.close(1000);
    this.emit("ended", { reason });
  }

  /** Leave for good. */
  leave() {
    try {
      this.conn.send(P.leave());
    } catch {
      // already closed: leaving anyway
    }
    this.finish("left");
  }

  // ---------------- server messages ----------------

  handlers = {
    joined(message) {
      // admitted from the lobby (the join reply itself is handled in connect())
      if (this.state === "lobby") this.onJoined(message);
    },
    denied() {
      this.finish("denied");
    },
    participant_joined({ participant }) {
      this.participants.set(participant.id, participant);
      this.emit("state", { joined: participant });
    },
    participant_updated({ participant }) {
      this.participants.set(participant.id, participant);
      if (participant.id === this.you?.id && participant.muted && this.mic) this.setLocalEnabled("audio", false);
      this.emit("state");
    },
    participant_left({ id }) {
      this.participants.delete(id);
      this.remote.delete(id);
      this.emit("state");
      this.emit("media");
    },
    speaking({ id }) {
      for (const p of this.participants.values()) p.speaking = p.id === id;
      this.emit("state");
    },
    lobby_changed({ lobby }) {
      this.lobby = lobby;
      this.emit("state");
    },
    locked({ locked }) {
      if (this.consultation) this.consultation.locked = locked;
      this.emit("state");
    },
    hands({ queue }) {
      this.hands = queue;
      this.emit("state");
    },
    floor(message) {
      this.floor = message;
      this.emit("state");
    },
    chat(message) {
      this.chats.push(message);
      this.emit("chat", message);
    },
    muted({ kind }) {
      if (kind === "audio") this.setLocalEnabled("audio", false);
      if (kind === "video") this.setLocalEnabled("video", false);
      this.emit("notice", { key: "room.muted.by" });
      this.emit("state");
    },
    unmute_requested({ kind }) {
      this.emit("notice", { key: "room.unmute.asked", kind, unmute: true });
    },
    removed() {
      this.finish("removed");
    },
    ended() {
      this.finish("ended");
    },
    error(message) {
      if (message.code === "removed") return this.finish("removed");
      if (message.fatal) console.warn("the server closes the connection:", message.code, message.message);
      // errors of our own requests are handled where they were sent
      if (message.fatal || message.ref !== undefined || this.state !== "joined") return;
      this.emit("notice", { code: message.code, error: true });
    },
    remote_track() {
      this.refreshRemote();
    },
    remote_tracks() {
      this.refreshRemote();
    },
    media_error(error) {
      // kept for support staff and the end-to-end tests
      this.negotiationErrors.push(String(error));
      console.warn("negotiation step failed", error);
    },
  };

  // ---------------- media ----------------

  startMedia() {
    this.closeMedia();
    const link = new P.MediaLink(this.conn, { iceServers: this.iceServers });
    this.link = link;
    link.pc.addEventListener("connectionstatechange", () => {
      if (link === this.link && link.pc.connectionState === "failed" && this.conn) {
        // the media path is lost: take the signaling path down too, and come back
        this.dropForReconnect(this.conn);
      }
    });
    const audio = this.localStream.getAudioTracks()[0];
    const video = this.localStream.getVideoTracks()[0];
    const sources = {};
    if (audio && this.can("publish_audio")) sources.mic = audio;
    if (video && this.can("publish_video")) sources.camera = video;
    link.start(sources);
    if (this.screenTrack && this.can("publish_screen")) link.publish("screen", this.screenTrack);
  }

  closeMedia() {
    if (this.link) this.link.close();
    this.link = null;
    this.remote = new Map();
  }

  /** Rebuild who-sends-what from the last server offer's track list and the receivers. */
  refreshRemote() {
    const link = this.link;
    if (!link) return;
    const next = new Map();
    for (const transceiver of link.pc.getTransceivers()) {
      const info = transceiver.mid === null ? null : link.tracks.get(String(transceiver.mid));
      if (!info || !transceiver.receiver.track) continue;
      const track = transceiver.receiver.track;
      const entry = next.get(info.participant) || {};
      const previous = this.remote.get(info.participant)?.[info.source];
      // keep the same MediaStream for the same track, so video elements do not blink
      entry[info.source] = previous && previous.getTracks()[0] === track ? previous : new MediaStream([track]);
      next.set(info.participant, entry);
    }
    this.remote = next;
    this.emit("media");
  }

  setLocalEnabled(kind, on) {
    const tracks = kind === "audio" ? this.localStream.getAudioTracks() : this.localStream.getVideoTracks();
    for (const track of tracks) track.enabled = on;
    if (kind === "audio") this.mic = on && tracks.length > 0;
    else this.camera = on && tracks.length > 0;
  }

  /** Turn the microphone on or off. */
  setMic(on) {
    if (!this.localStream.getAudioTracks().length) return;
    this.setLocalEnabled("audio", on);
    this.emit("state");
    this.act(P.setMedia({ audio: on }), () => {
      this.setLocalEnabled("audio", false);
      this.emit("state");
    });
  }

  /** Turn the camera on or off (opening it if the person started with voice only). */
  async setCamera(on) {
    if (on && !this.localStream.getVideoTracks().length) {
      const stream = await navigator.mediaDevices.getUserMedia({ video: { width: 640, height: 480 } });
      const track = stream.getVideoTracks()[0];
      this.localStream.addTrack(track);
      this.camera = true;
      if (this.link) this.link.publish("camera", track);
      this.emit("state");
      return;
    }
    this.setLocalEnabled("video", on);
    this.emit("state");
    this.act(P.setMedia({ video: on }));
  }

  /** Share a screen or window (the browser asks which). */
  async startScreen() {
    const stream = await navigator.mediaDevices.getDisplayMedia({ video: { frameRate: 15 }, audio: false });
    const track = stream.getVideoTracks()[0];
    this.screenTrack = track;
    track.addEventListener("ended", () => this.stopScreen());
    this.emit("state");
    if (this.link) await this.link.publish("screen", track);
  }

  async stopScreen() {
    if (!this.screenTrack) return;
    this.screenTrack.stop();
    this.screenTrack = null;
    this.emit("state");
    if (this.link) await this.link.unpublish("screen");
  }

  // ---------------- room actions ----------------

  /** Send a room action; a server error becomes a notice (and `onError` runs). */
  act(message, onError) {
    if (!this.conn || this.state !== "joined") return Promise.resolve();
    return this.conn.request(message).catch((error) => {
      if (!(error instanceof P.ProtocolError)) return;
      if (onError) onError(error);
      this.emit("notice", { code: error.code, error: true });
    });
  }

  raiseHand() { return this.act(P.raiseHand()); }
  lowerHand(id) { return this.act(P.lowerHand(id)); }
  grantFloor(id) { return this.act(P.grantFloor(id)); }
  revokeFloor() { return this.act(P.revokeFloor()); }
  admit(id) { return this.act(P.admit(id)); }
  deny(id) { return this.act(P.deny(id)); }
  mute(id, kind) { return this.act(P.mute(id, kind)); }
  askUnmute(id, kind) { return this.act(P.askUnmute(id, kind)); }
  remove(id) { return this.act(P.remove(id)); }
  lock(locked) { return this.act(P.lock(locked)); }
  end() { return this.act(P.end()); }
  chat(text, to) { return this.act(P.chat(text, to)); }
}
