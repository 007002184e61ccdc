// A client of a live view (web/LIVE.md): a snapshot, then deltas applied
// in order. It detects gaps and duplicates by the deltas' positions,
// reconnects with ?after=<last position> and backoff, and reports its
// state: "connecting", "live", "reconnecting", "resynced", "lagging".

function parse(p) {
  const [tx, pos] = String(p).split(':');
  return [BigInt(tx), BigInt(pos)];
}

// before tells whether position a is earlier in the log than b.
export function before(a, b) {
  const [ta, pa] = parse(a);
  const [tb, pb] = parse(b);
  return ta < tb || (ta === tb && pa < pb);
}

export class LiveView {
  // path is the endpoint ("/api/v1/live/board"); onSnapshot(data) and
  // onDelta(data) change the state; onState(state) shows the connection.
  constructor(path, { onSnapshot, onDelta, onState, onStatus }) {
    this.path = path;
    this.onSnapshot = onSnapshot;
    this.onDelta = onDelta;
    this.onState = onState || (() => {});
    this.onStatus = onStatus || (() => {});
    this.last = null;
    this.attempt = 0;
    this.closed = false;
    this.everSynced = false;
  }

  start() { this.connect(); return this; }

  stop() {
    this.closed = true;
    clearTimeout(this.timer);
    if (this.ws) this.ws.close(1000);
  }

  connect() {
    const scheme = location.protocol === 'https:' ? 'wss' : 'ws';
    const after = this.last ? `?after=${encodeURIComponent(this.last)}` : '';
    this.onState(this.everSynced ? 'reconnecting' : 'connecting');
    const ws = new WebSocket(`${scheme}://${location.host}${this.path}${after}`);
    this.ws = ws;
    ws.onmessage = (ev) => this.receive(JSON.parse(ev.data));
    ws.onclose = (ev) => {
      if (this.ws !== ws || this.closed) return;
      if (ev.code === 4001) { this.onState('signed-out'); return; }
      this.retry();
    };
  }

  retry() {
    this.onState('reconnecting');
    const wait = Math.min(30000, 1000 * 2 ** Math.min(this.attempt++, 5)) * (0.5 + Math.random() / 2);
    this.timer = setTimeout(() => this.connect(), wait);
  }

  // resync drops the connection and starts again from the last position.
  resync() {
    const ws = this.ws;
    this.ws = null;
    if (ws) ws.close(1000);
    this.connect();
  }

  receive(m) {
    switch (m.type) {
      case 'snapshot':
        this.onSnapshot(m.data);
        this.last = m.position;
        break;
      case 'deltas':
        for (const d of m.deltas) if (!this.apply(d)) return;
        break;
      case 'delta':
        this.apply(m);
        break;
      case 'synced':
        this.attempt = 0;
        this.onState(this.everSynced && m.mode === 'snapshot' ? 'resynced' : 'live');
        this.everSynced = true;
        break;
      case 'status':
        this.onStatus(m.state);
        this.onState(m.state === 'lagging' ? 'lagging' : 'live');
        break;
      default:
        break; // hello, and messages of later versions
    }
  }

  // apply applies one delta by the protocol's rules; false on a gap,
  // after which the view resyncs.
  apply(d) {
    if (this.last && !before(this.last, d.position)) return true; // a duplicate
    if (this.last && before(this.last, d.prev)) { this.resync(); return false; } // a gap
    this.onDelta(d.data);
    this.last = d.position;
    return true;
  }
}
