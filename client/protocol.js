// The signaling protocol of docs/protocol.md, without DOM code: message builders, a connection
// that matches replies to requests by `ref`, and the media negotiation with the SFU (the client
// starts; the server is the impolite peer, so on glare this side rolls back and offers again).
// Uses only WebSocket and RTCPeerConnection, given in the constructor or taken from globalThis.

/**
 * @typedef {{via: "link"|"passcode"|"staff"|"resume", token?: string, join_id?: string,
 *   passcode?: string, consultation?: string, role?: string, display_name?: string}} Credentials
 * @typedef {"mic"|"camera"|"screen"} Source
 * @typedef {"audio"|"video"|"screen"} Kind
 * @typedef {{id: string, role: string, role_label: {ja: string, en: string}, name: string,
 *   pseudonym: number|null, audio: boolean, video: boolean, screen: boolean, muted: boolean,
 *   speaking: boolean, hand: number|null, floor: boolean, connected: boolean,
 *   identity?: {name: string, email: string}}} ParticipantView
 * @typedef {{mid: string, participant: string, kind: "audio"|"video", source: Source}} TrackInfo
 * @typedef {{type: string, ref?: string|number, [key: string]: any}} Message
 */

export const MAX_FRAME = 64 * 1024;
export const CHAT_MAX = 2000;
export const RECONNECT_GRACE_MS = 30_000;

// -- client messages --------------------------------------------------------------------------

/** @param {Credentials} c @returns {Message} */
export function join(c) {
  /** @type {Message} */
  const message = { type: "join", via: c.via };
  for (const key of ["token", "join_id", "passcode", "consultation", "role", "display_name"]) {
    if (c[key]) message[key] = c[key];
  }
  return message;
}

export const leave = () => ({ type: "leave" });
export const ping = () => ({ type: "ping" });
/** @param {string} sdp @param {Record<string, Source>} sources */
export const offer = (sdp, sources) => ({ type: "offer", sdp, sources });
/** @param {string} sdp */
export const answer = (sdp) => ({ type: "answer", sdp });
/** @param {string} candidate @param {string|null} sdpMid @param {number|null} index */
export const candidate = (candidate, sdpMid, index) => ({
  type: "candidate",
  candidate,
  sdp_mid: sdpMid,
  sdp_mline_index: index,
});
/** @param {{audio?: boolean, video?: boolean, screen?: boolean}} media */
export const setMedia = (media) => ({ type: "set_media", ...media });
export const raiseHand = () => ({ type: "raise_hand" });
/** @param {string} [id] someone else's hand (needs grant_floor) */
export const lowerHand = (id) => (id ? { type: "lower_hand", id } : { type: "lower_hand" });
/** @param {string} [id] omitted: the first in the hand queue */
export const grantFloor = (id) => (id ? { type: "grant_floor", id } : { type: "grant_floor" });
export const revokeFloor = () => ({ type: "revoke_floor" });
/** @param {string} id */
export const admit = (id) => ({ type: "admit", id });
/** @param {string} id */
export const deny = (id) => ({ type: "deny", id });
/** @param {string} id @param {Kind} kind */
export const mute = (id, kind) => ({ type: "mute", id, kind });
/** @param {string} id @param {Kind} kind */
export const askUnmute = (id, kind) => ({ type: "ask_unmute", id, kind });
/** @param {string} id */
export const remove = (id) => ({ type: "remove", id });
/** @param {boolean} locked */
export const lock = (locked) => ({ type: "lock", locked });
export const end = () => ({ type: "end" });
/** @param {string} text @param {"all"|"staff"} [to] */
export const chat = (text, to = "all") => ({ type: "chat", text, to });

/** Replies that answer a request (they carry its ref). */
const REPLIES = { join: ["joined", "lobby"], offer: ["answer"], ping: ["pong"] };

/** An `error` message from the server, as an exception. */
export class ProtocolError extends Error {
  /** @param {Message} message */
  constructor(message) {
    super(message.message || message.code);
    this.name = "ProtocolError";
    /** @type {string} */
    this.code = message.code;
    /** @type {boolean} */
    this.fatal = Boolean(message.fatal);
    /** @type {Message} */
    this.detail = message;
  }
}

// -- the connection ---------------------------------------------------------------------------

/**
 * One signaling WebSocket. Listen with `on(type, handler)` for any server message type, plus
 * "close" ({code, reason}). `request()` resolves with the reply carrying the same ref.
 */
export class Connection {
  /** @param {string} url e.g. "wss://host/ws" @param {{WebSocket?: any}} [impl] */
  constructor(url, impl = {}) {
    this.url = url;
    this.WebSocket = impl.WebSocket || globalThis.WebSocket;
    /** @type {any} */
    this.ws = null;
    /** @type {Map<string, Set<(m: any) => void>>} */
    this.handlers = new Map();
    /** @type {Map<string, {resolve: (m: Message) => void, reject: (e: Error) => void, types: string[]}>} */
    this.pending = new Map();
    this.nextRef = 1;
  }

  /** Open the WebSocket. @returns {Promise<void>} */
  open() {
    return new Promise((resolve, reject) => {
      const ws = new this.WebSocket(this.url);
      this.ws = ws;
      ws.onopen = () => resolve();
      ws.onerror = () => reject(new Error("websocket error"));
      ws.onmessage = (event) => this.receive(String(event.data));
      ws.onclose = (event) => {
        for (const waiter of this.pending.values()) waiter.reject(new Error("connection closed"));
        this.pending.clear();
        this.emit("close", { type: "close", code: event.code, reason: event.reason });
      };
    });
  }

  /** @param {string} type @param {(m: any) => void} handler @returns {() => void} unsubscribe */
  on(type, handler) {
    if (!this.handlers.has(type)) this.handlers.set(type, new Set());
    this.handlers.get(type).add(handler);
    return () => this.handlers.get(type).delete(handler);
  }

  /** @param {string} type @param {any} message */
  emit(type, message) {
    for (const handler of this.handlers.get(type) || []) handler(message);
  }

  /** Send without waiting for a reply (errors still arrive as "error" events). @param {Message} message */
  send(message) {
    const text = JSON.stringify(message);
    if (new TextEncoder().encode(text).length > MAX_FRAME) throw new Error("message over 64 KiB");
    this.ws.send(text);
  }

  /**
   * Send and wait for the reply with the same ref (`joined`/`lobby`, `answer`, `pong`), or for
   * any message at all for actions without a reply (resolves when no error came back quickly).
   * @param {Message} message @returns {Promise<Message>}
   */
  request(message) {
    const ref = `r${this.nextRef++}`;
    const types = REPLIES[message.type] || [];
    return new Promise((resolve, reject) => {
      this.pending.set(ref, { resolve, reject, types });
      this.send({ ...message, ref });
      if (!types.length) {
        // no positive reply exists: settle after a round trip without an error
        this.send({ type: "ping", ref: `${ref}.p` });
        this.pending.set(`${ref}.p`, {
          resolve: () => {
            if (this.pending.delete(ref)) resolve({ type: "ok", ref });
          },
          reject,
          types: ["pong"],
        });
      }
    });
  }

  /** @param {string} text */
  receive(text) {
    /** @type {Message} */
    let message;
    try {
      message = JSON.parse(text);
    } catch {
      return;
    }
    const ref = message.ref === undefined ? undefined : String(message.ref);
    const waiter = ref === undefined ? undefined : this.pending.get(ref);
    if (waiter && (message.type === "error" || waiter.types.includes(message.type))) {
      this.pending.delete(ref);
      if (message.type === "error") waiter.reject(new ProtocolError(message));
      else waiter.resolve(message);
    }
    this.emit(message.type, message);
  }

  /** @param {number} [code] */
  close(code = 1000) {
    if (this.ws) this.ws.close(code);
  }
}

// -- media ------------------------------------------------------------------------------------

/**
 * One RTCPeerConnection to the SFU, negotiated as docs/protocol.md says: the client offers
 * first (publishing its sources, or one recvonly audio m-line), the server then offers the
 * others' tracks. Emits on the connection: "remote_track" {participant, kind, source, track,
 * mid} and "remote_tracks" (the TrackInfo list of the last server offer).
 */
export class MediaLink {
  /**
   * @param {Connection} connection
   * @param {{iceServers?: any[], RTCPeerConnection?: any}} [options]
   */
  constructor(connection, options = {}) {
    const PeerConnection = options.RTCPeerConnection || globalThis.RTCPeerConnection;
    this.connection = connection;
    this.pc = new PeerConnection({
      iceServers: options.iceServers || [],
      bundlePolicy: "max-bundle",
    });
    /** @type {Map<Source, any>} source -> RTCRtpTransceiver */
    this.senders = new Map();
    /** @type {Map<string, TrackInfo>} */
    this.tracks = new Map();
    this.chain = Promise.resolve();
    this.offered = false;
    this.unsubscribe = connection.on("offer", (message) => this.queue(() => this.answerServer(message)));
    this.pc.ontrack = (/** @type {any} */ event) => this.announce(event.transceiver);
    this.pc.onicecandidate = (/** @type {any} */ event) => {
      // before the first offer the server has no transport: the offer's SDP carries them
      if (this.offered && event.candidate) {
        const c = event.candidate;
        this.connection.send(candidate(c.candidate, c.sdpMid, c.sdpMLineIndex));
      }
    };
  }

  /** Run negotiation steps one at a time. @param {() => Promise<void>} step */
  queue(step) {
    this.chain = this.chain.then(step, step).catch((error) => this.connection.emit("media_error", error));
    return this.chain;
  }

  /**
   * Publish these sources (a track per source) and make the first offer.
   * @param {Partial<Record<Source, any>>} sources
   */
  start(sources) {
    for (const [source, track] of Object.entries(sources)) {
      if (track) this.senders.set(/** @type {Source} */ (source), this.pc.addTransceiver(track, { direction: "sendonly" }));
    }
    if (!this.senders.size) this.pc.addTransceiver("audio", { direction: "recvonly" });
    return this.queue(() => this.offerServer());
  }

  /** Start or replace a source (e.g. screen share) and renegotiate. @param {Source} source @param {any} track */
  publish(source, track) {
    const existing = this.senders.get(source);
    if (existing) {
      existing.direction = "sendonly";
      return existing.sender.replaceTrack(track).then(() => this.queue(() => this.offerServer()));
    }
    this.senders.set(source, this.pc.addTransceiver(track, { direction: "sendonly" }));
    return this.queue(() => this.offerServer());
  }

  /** Stop a source: its m-line becomes inactive and the SFU closes the producer. @param {Source} source */
  async unpublish(source) {
    const transceiver = this.senders.get(source);
    if (!transceiver) return;
    this.senders.delete(source);
    await transceiver.sender.replaceTrack(null);
    transceiver.direction = "inactive";
    await this.queue(() => this.offerServer());
  }

  /** @returns {Record<string, Source>} mid -> source of every sending m-line */
  sources() {
    /** @type {Record<string, Source>} */
    const sources = {};
    for (const [source, transceiver] of this.senders) {
      if (transceiver.mid !== null && transceiver.direction === "sendonly") sources[transceiver.mid] = source;
    }
    return sources;
  }

  async offerServer() {
    const pc = this.pc;
    await pc.setLocalDescription(await pc.createOffer());
    await gathered(pc);
    this.offered = true;
    let reply;
    try {
      reply = await this.connection.request(offer(pc.localDescription.sdp, this.sources()));
    } catch (error) {
      if (pc.signalingState === "have-local-offer") await pc.setLocalDescription({ type: "rollback" });
      // glare: the server's offer is on its way; answer it (queued after us), then offer again
      if (error instanceof ProtocolError && error.code === "glare") {
        this.queue(() => this.offerServer());
        return;
      }
      throw error;
    }
    await pc.setRemoteDescription({ type: "answer", sdp: reply.sdp });
  }

  /** @param {Message} message a server `offer` */
  async answerServer(message) {
    const pc = this.pc;
    if (pc.signalingState === "have-local-offer") await pc.setLocalDescription({ type: "rollback" });
    this.tracks = new Map((message.tracks || []).map((/** @type {TrackInfo} */ t) => [String(t.mid), t]));
    await pc.setRemoteDescription({ type: "offer", sdp: message.sdp });
    await pc.setLocalDescription(await pc.createAnswer());
    await gathered(pc);
    this.connection.send(answer(pc.localDescription.sdp));
    this.connection.emit("remote_tracks", [...this.tracks.values()]);
    for (const transceiver of pc.getTransceivers()) this.announce(transceiver);
  }

  /** @param {any} transceiver */
  announce(transceiver) {
    const info = transceiver.mid === null ? undefined : this.tracks.get(String(transceiver.mid));
    if (!info || !transceiver.receiver.track) return;
    this.connection.emit("remote_track", { ...info, track: transceiver.receiver.track });
  }

  close() {
    this.unsubscribe();
    this.pc.close();
  }
}

/**
 * Wait until ICE gathering is complete (at most `ms`), so the SDP carries the candidates.
 * @param {any} pc @param {number} [ms]
 */
export function gathered(pc, ms = 2000) {
  if (pc.iceGatheringState === "complete") return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(done, ms);
    function done() {
      clearTimeout(timer);
      pc.removeEventListener("icegatheringstatechange", check);
      resolve(undefined);
    }
    function check() {
      if (pc.iceGatheringState === "complete") done();
    }
    pc.addEventListener("icegatheringstatechange", check);
  });
}

// -- a participant's session ------------------------------------------------------------------

/**
 * Join, keep the resume token, and reconnect within the 30 s grace period when the connection
 * drops (not when the server ended, removed, denied or replaced it).
 */
export class Session {
  /** @param {string} url @param {{WebSocket?: any}} [impl] */
  constructor(url, impl = {}) {
    this.url = url;
    this.impl = impl;
    this.connection = new Connection(url, impl);
    /** @type {string|null} */
    this.resumeToken = null;
    /** @type {Message|null} */
    this.joined = null;
    this.droppedAt = 0;
  }

  /** @param {Credentials} credentials @returns {Promise<Message>} `joined` or `lobby` */
  async join(credentials) {
    await this.connection.open();
    const reply = await this.connection.request(join(credentials));
    this.resumeToken = reply.resume_token || null;
    if (reply.type === "joined") this.joined = reply;
    this.connection.on("joined", (message) => {
      this.joined = message;
      this.resumeToken = message.resume_token;
    });
    return reply;
  }

  /** Whether a close code means "try to come back". @param {number} code */
  static shouldResume(code) {
    return ![1000, 4000, 4001].includes(code);
  }

  /** Open a new connection and take the place back; the caller then starts media again. */
  async resume() {
    if (!this.resumeToken) throw new Error("nothing to resume");
    const handlers = this.connection.handlers;
    this.connection = new Connection(this.url, this.impl);
    this.connection.handlers = handlers;
    await this.connection.open();
    const reply = await this.connection.request(join({ via: "resume", token: this.resumeToken }));
    if (reply.type === "joined") this.joined = reply;
    return reply;
  }
}
