// One participant's live session: the signaling connection (docs/protocol.md), the peer
// connection to the SFU, reconnecting, and the room state the UI draws. No DOM code here.
import * as wire from "./wire.js";

const RESUME_WINDOW_MS = 30_000;
const PING_EVERY_MS = 15_000;
const PONG_WITHIN_MS = 10_000;

/** Wait until ICE gathering is complete, so that the SDP we send carries our candidates. */
function gathered(pc) {
  if (pc.iceGatheringState === "complete") return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => {
      if (pc.iceGatheringState !== "complete") return;
      pc.removeEventListener("icegatheringstatechange", done);
      resolve();
    };
    pc.addEventListener("icegatheringstatechange", done);
    // loopback gathers in milliseconds; never hang a join on a slow interface
    setTimeout(resolve, 3000);
  });
}

/** An error answered by the server (`code` as in docs/protocol.md). */
export class ServerError extends Error {
  constructor(message) {
    super(message.message || message.code);
    this.code = message.code;
    this.detail = message;
  }
}

/**
 * A live session. Events (CustomEvent, data in `detail`): lobby, joined, joinerror, state,
 * media, chat, notice, reconnecting, reconnected, ended.
 */
export class Session extends EventTarget {
  /**
   * @param {{via: string, token?: string, join_id?: string, passcode?: string,
   *          consultation?: string, role?: string, display_name?: string}} credentials
   * @param {MediaStream} localStream camera/microphone opened by the device check
   */
  constructor(credentials, localStream) {
    super();
    this.credentials = credentials;
    this.localStream = localStream || new MediaStream();
    this.ws = null;
    this.pc = null;
    this.refs = 0;
    this.pending = new Map();
    this.resumeToken = null;
    this.you = null;
    this.consultation = null;
    this.participants = new Map();
    this.hands = [];
    this.floor = { holder: null, ends_at: null, turn_seconds: null };
    this.lobby = [];
    this.clockOffset = 0;
    this.chats = [];
    this.tracksByMid = new Map();
    this.remote = new Map(); // participant id -> {camera?, screen?, mic?} MediaStreams
    this.senders = {}; // source -> RTCRtpTransceiver
    this.chain = Promise.resolve();
    this.state = "idle"; // idle | connecting | lobby | joined | reconnecting | ended
    this.lostAt = 0;
    this.closedByUs = false;
    this.pingTimer = 0;
    this.pongTimer = 0;
    this.mic = this.localStream.getAudioTracks().length > 0;
    this.camera = this.localStream.getVideoTracks().length > 0;
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

  connect(credentials) {
    const scheme = location.protocol === "https:" ? "wss:" : "ws:";
    const ws = new WebSocket(`${scheme}//${location.host}/ws`);
    this.ws = ws;
    ws.addEventListener("open", () => {
      this.send(wire.join(credentials), (reply) => this.onJoinReply(reply, credentials));
      this.startPing();
    });
    ws.addEventListener("message", (event) => this.onMessage(event.data));
    ws.addEventListener("close", (event) => this.onClose(ws, event));
  }

  send(message, onReply) {
    if (!this.ws || this.ws.readyState !== WebSocket.OPEN) return null;
    const ref = ++this.refs;
    if (onReply) this.pending.set(ref, onReply);
    this.ws.send(JSON.stringify({ ...message, ref }));
    return ref;
  }

  /** Send and wait for the reply carrying the same ref; an `error` rejects. */
  request(message) {
    return new Promise((resolve, reject) => {
      const ref = this.send(message, (reply) =>
        reply.type === "error" ? reject(new ServerError(reply)) : resolve(reply),
      );
      if (ref === null) reject(new ServerError({ code: "network" }));
    });
  }

  startPing() {
    clearInterval(this.pingTimer);
    this.pingTimer = setInterval(() => {
      const ws = this.ws;
      clearTimeout(this.pongTimer);
      this.pongTimer = setTimeout(() => ws && ws.close(4100, "no pong"), PONG_WITHIN_MS);
      this.send(wire.ping(), () => clearTimeout(this.pongTimer));
    }, PING_EVERY_MS);
  }

  onMessage(data) {
    let message;
    try {
      message = JSON.parse(data);
    } catch {
      return;
    }
    if (message.ref !== undefined && this.pending.has(message.ref)) {
      const reply = this.pending.get(message.ref);
      this.pending.delete(message.ref);
      reply(message);
      return;
    }
    const handler = this.handlers[message.type];
    if (handler) handler.call(this, message);
  }

  onJoinReply(reply, credentials) {
    if (reply.type === "lobby") {
      this.resumeToken = reply.resume_token;
      this.state = "lobby";
      this.emit("lobby", reply);
    } else if (reply.type === "joined") {
      this.onJoined(reply);
    } else if (reply.type === "error") {
      if (this.state === "reconnecting") {
        // the place was given up (or the server forgot us): nothing left to resume
        this.finish("lost");
        return;
      }
      this.closedByUs = true;
      this.ws.close(1000);
      this.state = "ended";
      this.emit("joinerror", { code: reply.code, retry_after: reply.retry_after, via: credentials.via });
    }
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

  onClose(ws, event) {
    if (ws !== this.ws) return;
    clearInterval(this.pingTimer);
    clearTimeout(this.pongTimer);
    for (const reply of this.pending.values()) reply({ type: "error", code: "network" });
    this.pending.clear();
    if (this.state === "ended" || this.closedByUs) return;
    if (event.code === 4001) return this.finish("replaced");
    if (this.state === "connecting") {
      this.state = "ended";
      this.emit("joinerror", { code: "network", via: this.credentials.via });
      return;
    }
    if (this.state === "lobby" && event.code === 1000) return this.finish("denied");
    if (event.code === 4000) return this.finish("lost");
    this.reconnect();
  }

  reconnect() {
    if (this.state !== "reconnecting") {
      this.state = "reconnecting";
      this.lostAt = Date.now();
      this.closePeer();
      this.emit("reconnecting");
    }
    if (Date.now() - this.lostAt > RESUME_WINDOW_MS + 5000) return this.finish("lost");
    const delay = Math.min(4000, 500 + (Date.now() - this.lostAt) / 4);
    setTimeout(() => {
      if (this.state !== "reconnecting") return;
      const credentials = this.resumeToken
        ? { via: "resume", token: this.resumeToken }
        : this.credentials;
      this.connect(credentials);
    }, delay);
  }

  finish(reason) {
    if (this.state === "ended") return;
    this.state = "ended";
    this.closedByUs = true;
    clearInterval(this.pingTimer);
    clearTimeout(this.pongTimer);
    this.closePeer();
    for (const track of this.localStream.getTracks()) track.stop();
    if (this.ws && this.ws.readyState <= WebSocket.OPEN) this.ws.close(1000);
    this.emit("ended", { reason });
  }

  /** Leave for good. */
  leave() {
    if (this.ws && this.ws.readyState === WebSocket.OPEN) this.send(wire.leave());
    this.finish("left");
  }

  // ---------------- server messages ----------------

  handlers = {
    joined(message) {
      // admitted from the lobby
      this.onJoined(message);
    },
    denied() {
      this.finish("denied");
    },
    participant_joined({ participant }) {
      this.participants.set(participant.id, participant);
      this.emit("state", { joined: participant });
    },
    participant_updated({ participant }) {
      const before = this.participants.get(participant.id);
      this.participants.set(participant.id, participant);
      if (participant.id === this.you?.id) this.syncOwnState(before, participant);
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
    offer(message) {
      this.queue(() => this.answerServer(message));
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
      if (message.fatal) return;
      this.emit("notice", { code: message.code, error: true });
    },
  };

  syncOwnState(before, now) {
    if (now.muted && this.mic) this.setLocalEnabled("audio", false);
    this.emit("state");
  }

  // ---------------- media ----------------

  /** Run SDP work one step at a time: offers both ways must never interleave. */
  queue(step) {
    this.chain = this.chain.then(step).catch((error) => {
      // kept for support staff and the end-to-end tests
      this.lastNegotiationError = String(error);
      console.warn("negotiation step failed", error);
    });
    return this.chain;
  }

  startMedia() {
    this.closePeer();
    const pc = new RTCPeerConnection({ iceServers: this.iceServers || [], bundlePolicy: "max-bundle" });
    this.pc = pc;
    this.senders = {};
    pc.addEventListener("track", () => this.refreshRemote());
    pc.addEventListener("connectionstatechange", () => {
      if (pc === this.pc && pc.connectionState === "failed" && this.ws) {
        // media path lost: take the signaling path down too, and rejoin
        this.ws.close(4100, "media failed");
      }
    });
    const audio = this.localStream.getAudioTracks()[0];
    const video = this.localStream.getVideoTracks()[0];
    if (audio && this.can("publish_audio")) this.addSender("mic", audio);
    if (video && this.can("publish_video")) this.addSender("camera", video);
    if (Object.keys(this.senders).length) this.queue(() => this.offerServer());
  }

  closePeer() {
    if (this.pc) this.pc.close();
    this.pc = null;
    this.tracksByMid = new Map();
    this.remote = new Map();
    this.chain = Promise.resolve();
  }

  addSender(source, track) {
    const stream = source === "screen" ? new MediaStream([track]) : this.localStream;
    this.senders[source] = this.pc.addTransceiver(track, { direction: "sendonly", streams: [stream] });
  }

  sources() {
    const sources = {};
    for (const [source, transceiver] of Object.entries(this.senders)) {
      if (transceiver.mid !== null && transceiver.direction === "sendonly") sources[transceiver.mid] = source;
    }
    return sources;
  }

  async offerServer() {
    const pc = this.pc;
    if (!pc) return;
    await pc.setLocalDescription(await pc.createOffer());
    await gathered(pc);
    let reply;
    try {
      reply = await this.request(wire.offer(pc.localDescription.sdp, this.sources()));
    } catch (error) {
      if (pc !== this.pc) return;
      if (pc.signalingState === "have-local-offer") await pc.setLocalDescription({ type: "rollback" });
      // glare: the server's offer is queued behind us; offer again after it
      if (error.code === "glare") this.queue(() => this.offerServer());
      else this.emit("notice", { code: error.code, error: true });
      return;
    }
    if (pc !== this.pc) return;
    await pc.setRemoteDescription({ type: "answer", sdp: reply.sdp });
  }

  async answerServer(message) {
    const pc = this.pc;
    if (!pc) return;
    if (pc.signalingState === "have-local-offer") {
      await pc.setLocalDescription({ type: "rollback" });
    }
    this.tracksByMid = new Map((message.tracks || []).map((track) => [String(track.mid), track]));
    await pc.setRemoteDescription({ type: "offer", sdp: message.sdp });
    await pc.setLocalDescription(await pc.createAnswer());
    await gathered(pc);
    this.send(wire.answer(pc.localDescription.sdp));
    this.refreshRemote();
  }

  /** Rebuild who-sends-what from the last server offer's track list and the receivers. */
  refreshRemote() {
    const pc = this.pc;
    if (!pc) return;
    const next = new Map();
    for (const transceiver of pc.getTransceivers()) {
      const info = transceiver.mid === null ? null : this.tracksByMid.get(String(transceiver.mid));
      if (!info || !transceiver.receiver.track) continue;
      const track = transceiver.receiver.track;
      const entry = next.get(info.participant) || {};
      const previous = this.remote.get(info.participant)?.[info.source];
      // keep the same MediaStream for the same track, so video elements do not blink
      entry[info.source] =
        previous && previous.getTracks()[0] === track ? previous : new MediaStream([track]);
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
  async setMic(on) {
    if (!this.localStream.getAudioTracks().length) return;
    this.setLocalEnabled("audio", on);
    this.emit("state");
    this.act(wire.setMedia({ audio: on }), () => {
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
      if (this.pc) {
        this.addSender("camera", track);
        this.queue(() => this.offerServer());
      }
      this.emit("state");
      return;
    }
    this.setLocalEnabled("video", on);
    this.emit("state");
    this.act(wire.setMedia({ video: on }));
  }

  /** Share a screen or window (asks the browser which). */
  async startScreen() {
    const stream = await navigator.mediaDevices.getDisplayMedia({ video: { frameRate: 15 }, audio: false });
    const track = stream.getVideoTracks()[0];
    this.screenTrack = track;
    track.addEventListener("ended", () => this.stopScreen());
    const existing = this.senders.screen;
    if (existing) {
      await existing.sender.replaceTrack(track);
      existing.direction = "sendonly";
    } else {
      this.addSender("screen", track);
    }
    this.emit("state");
    await this.queue(() => this.offerServer());
  }

  async stopScreen() {
    const transceiver = this.senders.screen;
    if (this.screenTrack) this.screenTrack.stop();
    this.screenTrack = null;
    if (transceiver && this.pc) {
      transceiver.direction = "inactive";
      await transceiver.sender.replaceTrack(null);
      this.queue(() => this.offerServer());
    }
    this.emit("state");
  }

  // ---------------- room actions ----------------

  /** Send a message that has no direct reply; an error carrying its ref becomes a notice. */
  act(message, onError) {
    const ref = this.send(message, (reply) => {
      if (reply.type !== "error" || reply.code === "network") return;
      if (onError) onError(reply);
      this.emit("notice", { code: reply.code, error: true });
    });
    // errors come at once; do not keep the ref forever
    if (ref !== null) setTimeout(() => this.pending.delete(ref), 15_000);
    return ref;
  }

  raiseHand() { return this.act(wire.raiseHand()); }
  lowerHand(id) { return this.act(wire.lowerHand(id)); }
  grantFloor(id) { return this.act(wire.grantFloor(id)); }
  revokeFloor() { return this.act(wire.revokeFloor()); }
  admit(id) { return this.act(wire.admit(id)); }
  deny(id) { return this.act(wire.deny(id)); }
  mute(id, kind) { return this.act(wire.mute(id, kind)); }
  askUnmute(id, kind) { return this.act(wire.askUnmute(id, kind)); }
  remove(id) { return this.act(wire.remove(id)); }
  lock(locked) { return this.act(wire.lock(locked)); }
  end() { return this.act(wire.end()); }
  chat(text, to) { return this.act(wire.chat(text, to)); }
}
