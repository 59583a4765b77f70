// Run by tests/test_protocol_js.py: node protocol_js_check.mjs <file URL of client/protocol.js>
const p = await import(process.argv[2]);
const assert = (ok, what) => { if (!ok) { console.error("FAIL " + what); process.exit(1); } };

class FakeSocket { constructor() { this.sent = []; } send(t) { this.sent.push(JSON.parse(t)); } close() {} }
const c = new p.Connection("ws://example/ws");
c.ws = new FakeSocket();

assert(JSON.stringify(p.join({via: "passcode", join_id: "1", passcode: "2", token: ""}))
  === '{"type":"join","via":"passcode","join_id":"1","passcode":"2"}', "join builder");
assert(p.grantFloor().type === "grant_floor" && !("id" in p.grantFloor()), "grant next");
assert(p.mute("m-1", "audio").kind === "audio", "mute builder");

// replies are matched to requests by ref; errors reject with their code
const joined = c.request(p.join({via: "link", token: "t"}));
const ref = c.ws.sent[0].ref;
let seen = null;
c.on("joined", (m) => { seen = m; });
c.receive(JSON.stringify({type: "joined", ref, you: {id: "m-1"}}));
assert((await joined).you.id === "m-1" && seen !== null, "joined resolves and is emitted");
const refused = c.request(p.raiseHand());
const ref2 = c.ws.sent[1].ref;
c.receive(JSON.stringify({type: "error", code: "forbidden", permission: "raise_hand", ref: ref2}));
try { await refused; assert(false, "should reject"); }
catch (e) { assert(e.code === "forbidden" && e.detail.permission === "raise_hand", "error code"); }
let tooBig = false;
try { c.send(p.chat("x".repeat(70000))); } catch { tooBig = true; }
assert(tooBig, "64 KiB cap");

// media: the client offers first, names its sources by mid, answers server offers
class FakePC {
  constructor(config) { this.config = config; this.transceivers = []; this.signalingState = "stable";
    this.iceGatheringState = "complete"; this.log = []; }
  addTransceiver(trackOrKind, init) { const t = {mid: null, direction: init.direction,
    sender: {replaceTrack: async () => {}}, receiver: {track: null}}; this.transceivers.push(t); return t; }
  getTransceivers() { return this.transceivers; }
  async createOffer() { this.transceivers.forEach((t, i) => { t.mid = String(i); }); return {type: "offer", sdp: "v=0 offer"}; }
  async createAnswer() { return {type: "answer", sdp: "v=0 answer"}; }
  async setLocalDescription(d) { this.log.push("local " + d.type);
    this.localDescription = d; this.signalingState = d.type === "offer" ? "have-local-offer" : "stable"; }
  async setRemoteDescription(d) { this.log.push("remote " + d.type);
    this.signalingState = d.type === "offer" ? "have-remote-offer" : "stable"; }
  addEventListener() {} removeEventListener() {} close() {}
}
const c2 = new p.Connection("ws://example/ws");
c2.ws = new FakeSocket();
const link = new p.MediaLink(c2, {RTCPeerConnection: FakePC, iceServers: []});
assert(link.pc.config.bundlePolicy === "max-bundle" && link.pc.config.iceServers.length === 0, "pc config");
const started = link.start({mic: {kind: "audio"}});
await new Promise((r) => setTimeout(r, 10));
const offer = c2.ws.sent[0];
assert(offer.type === "offer" && offer.sources["0"] === "mic", "first offer names the mic");
// glare: the server refuses; the client rolls back, answers the server's offer, offers again
c2.receive(JSON.stringify({type: "error", code: "glare", ref: offer.ref}));
c2.receive(JSON.stringify({type: "offer", sdp: "v=0 server", tracks: [{mid: "1", participant: "m-2", kind: "audio", source: "mic"}]}));
await started;
await new Promise((r) => setTimeout(r, 20));
assert(link.pc.log.includes("local rollback"), "rolled back on glare");
const types = c2.ws.sent.map((m) => m.type);
assert(types.join(",") === "offer,answer,offer", "answer the server, then offer again: " + types);
console.log("ok");
