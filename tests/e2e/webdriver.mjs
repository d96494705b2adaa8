// A small W3C WebDriver client for tauri-driver: just the calls the console's end-to-end run
// needs. tauri-driver sometimes drops a connection, so every request is retried a few times.

const ELEMENT = "element-6066-11e4-a52e-4f735466cecf";
/** An element reference's id (W3C key, or the legacy one some servers still send). */
function elementId(ref) {
  const id = ref[ELEMENT] ?? ref.ELEMENT;
  if (!id) throw new Error(`not an element reference: ${JSON.stringify(ref)}`);
  return id;
}
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

export class WebDriverError extends Error {
  constructor(status, error, message) {
    super(`${error}: ${message} (HTTP ${status})`);
    this.error = error;
  }
}

async function request(base, method, path, body) {
  let lastError;
  for (let attempt = 0; attempt < 5; attempt++) {
    try {
      const res = await fetch(base + path, {
        method,
        headers: body === undefined ? {} : { "content-type": "application/json" },
        body: body === undefined ? undefined : JSON.stringify(body),
      });
      const text = await res.text();
      const json = text ? JSON.parse(text) : {};
      if (!res.ok) {
        const v = json.value ?? {};
        throw new WebDriverError(res.status, v.error ?? "unknown error", v.message ?? text);
      }
      return json.value;
    } catch (e) {
      if (e instanceof WebDriverError) throw e;
      lastError = e; // connection refused or dropped: tauri-driver restarts its proxy connection
      await sleep(250 * (attempt + 1));
    }
  }
  throw lastError;
}

export async function waitForDriver(base, timeoutMs = 20_000) {
  const end = Date.now() + timeoutMs;
  while (Date.now() < end) {
    try {
      const res = await fetch(base + "/status");
      if (res.ok) return;
    } catch {
      // not listening yet
    }
    await sleep(200);
  }
  throw new Error(`no WebDriver server at ${base} after ${timeoutMs} ms`);
}

export class Session {
  static async start(base, tauriOptions) {
    const value = await request(base, "POST", "/session", {
      capabilities: { alwaysMatch: { "tauri:options": tauriOptions } },
    });
    return new Session(base, value.sessionId);
  }

  constructor(base, id) {
    this.base = base;
    this.id = id;
  }

  call(method, path, body) {
    return request(this.base, method, `/session/${this.id}${path}`, body);
  }

  async end() {
    await this.call("DELETE", "").catch(() => {});
  }

  /** Runs `body` (a function body) in the page with `args`; returns its value. */
  execute(body, ...args) {
    return this.call("POST", "/execute/sync", { script: body, args });
  }

  executeAsync(body, ...args) {
    return this.call("POST", "/execute/async", { script: body, args });
  }

  async findAll(css) {
    const found = await this.call("POST", "/elements", { using: "css selector", value: css });
    return found.map((f) => new Element(this, elementId(f)));
  }

  /** Waits until `css` matches at least one element; returns the first. */
  async find(css, timeoutMs = 15_000) {
    const [el] = await this.waitUntil(async () => {
      const all = await this.findAll(css);
      return all.length ? all : null;
    }, `an element ${css}`, timeoutMs);
    return el;
  }

  byTestId(id, timeoutMs) {
    return this.find(`[data-testid="${id}"]`, timeoutMs);
  }

  /** Polls `probe` until it returns something truthy. */
  async waitUntil(probe, what, timeoutMs = 15_000) {
    const end = Date.now() + timeoutMs;
    let last;
    while (Date.now() < end) {
      try {
        const v = await probe();
        if (v) return v;
      } catch (e) {
        last = e;
      }
      await sleep(150);
    }
    throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last ? ` (last error: ${last.message})` : ""}`);
  }

  async textOf(css) {
    const el = await this.find(css);
    return el.text();
  }

  back() {
    return this.call("POST", "/back", {});
  }

  /** A PNG of the window, taken after two animation frames so it shows the current state. */
  async screenshot() {
    await this.executeAsync(
      "const done = arguments[arguments.length - 1]; requestAnimationFrame(() => requestAnimationFrame(() => done(true)));",
    );
    const b64 = await this.call("GET", "/screenshot");
    return Buffer.from(b64, "base64");
  }
}

export class Element {
  constructor(session, id) {
    this.session = session;
    this.id = id;
  }
  call(method, path, body) {
    return this.session.call(method, `/element/${this.id}${path}`, body);
  }
  click() {
    return this.call("POST", "/click", {});
  }
  clear() {
    return this.call("POST", "/clear", {});
  }
  type(text) {
    return this.call("POST", "/value", { text });
  }
  /** The element's rendered text (innerText): WebKitWebDriver's own text command drops the text
   *  of cells that clip with an ellipsis. */
  text() {
    return this.session.execute("return arguments[0].innerText;", this);
  }
  attribute(name) {
    return this.call("GET", `/attribute/${encodeURIComponent(name)}`);
  }
  property(name) {
    return this.call("GET", `/property/${encodeURIComponent(name)}`);
  }
  enabled() {
    return this.call("GET", "/enabled");
  }
  async findAll(css) {
    const found = await this.call("POST", "/elements", { using: "css selector", value: css });
    return found.map((f) => new Element(this.session, elementId(f)));
  }
  toJSON() {
    return { [ELEMENT]: this.id };
  }
}
