// The live canvas (Streamlit Components v2). framing.mjs is prepended to this file by kmnist_live/__init__.py,
// so prepareCanvas is in scope. onnxruntime-web and the model come from the app's own routes (kmnist_live.routes).
//
// While the pen moves, at most one inference is in flight; strokes drawn meanwhile are read by the next
// one. On pen up one more runs on the finished drawing, and its 28x28, probabilities and the canvas PNG
// go to Python through setStateValue("drawing", ...). Until the model is ready in the browser, the drawing goes
// without probabilities: the server reads the same 28x28 and hands its answer back in data.answer.

const instances = new WeakMap();  // one LiveCanvas per mounted element, kept across reruns

// Timings for benchmarks/live.py and the browser tests: model load, inferences, pen up -> answer shown.
const stats = (window.kmnistLive = window.kmnistLive || { loads: [], infer: [], penUp: [], answers: 0, served: 0 });

function toBase64(bytes) {
  let s = "";
  for (const b of bytes) s += String.fromCharCode(b);
  return btoa(s);
}

class LiveCanvas {
  constructor(root) {
    this.root = root;
    this.$ = (sel) => root.querySelector(sel);
    this.canvas = this.$(".ink");
    this.ctx = this.canvas.getContext("2d", { willReadFrequently: true });
    this.strokes = [];
    this.current = null;
    this.session = null;
    this.modelUrl = null;
    this.busy = null;  // the promise of the inference loop while one runs
    this.again = false;
    this.seq = 0;
    this.paper();
    this.bind();
  }

  update(data, setStateValue) {
    this.data = data;
    this.send = setStateValue;
    this.trace(data.background);
    if (typeof WebAssembly !== "object") {
      this.status("This browser has no WebAssembly: using the server instead.");
      setStateValue("unsupported", true);
      return;
    }
    const url = new URL(data.model, window.location.origin).href;
    if (url !== this.modelUrl) this.load(url);
    this.served(data.answer);
  }

  // The server's answer to the drawing last sent without probabilities, shown while the browser has no model.
  served(answer) {
    if (this.session || !answer || !this.framed || answer.image !== this.sent || this.probs) return;
    this.probs = Float32Array.from(answer.probs);
    this.score = answer.score;  // the server applies the same rule to the same 28x28
    this.ms = null;
    stats.served++;
    this.show(this.probs);
  }

  async load(url) {
    this.modelUrl = url;
    this.session = null;
    this.status("Loading the model into your browser; the server answers meanwhile.");
    const started = performance.now();
    try {
      const ortBase = new URL(this.data.ort, window.location.origin).href;
      const ort = await import(ortBase + "ort.wasm.min.mjs");
      ort.env.wasm.numThreads = 1;  // no SharedArrayBuffer, so no COOP/COEP headers needed
      ort.env.wasm.wasmPaths = ortBase;
      const session = await ort.InferenceSession.create(url, { executionProviders: ["wasm"] });
      if (url !== this.modelUrl) return;  // another run was activated meanwhile
      this.ort = ort;
      this.session = session;
      const ms = performance.now() - started;
      stats.loads.push(ms);
      this.status(`Model ${this.data.run} ready in your browser (${ms.toFixed(0)} ms).`, true);
      if (this.strokes.length) this.request().then(() => this.deliver());
    } catch (e) {
      this.status(`The model did not load in the browser: ${e.message || e}`);
    }
  }

  // Show a picture (a data: URL) faintly under the ink, or none; it is never drawn into the canvas itself.
  trace(src) {
    const img = this.$(".trace");
    if (!src) {
      img.hidden = true;
      img.removeAttribute("src");
    } else {
      if (img.getAttribute("src") !== src) img.src = src;
      img.hidden = false;
    }
  }

  // The status line; `ready` marks the browser model loaded (data-testid="live-ready", for checks).
  status(text, ready = false) {
    const line = document.createElement("span");
    line.textContent = text;
    if (ready) line.dataset.testid = "live-ready";
    this.$(".status").replaceChildren(line);
  }

  paper() {
    this.ctx.fillStyle = "#fff";
    this.ctx.fillRect(0, 0, this.canvas.width, this.canvas.height);
  }

  width() {
    return Number(this.$(".width").value);
  }

  point(e) {
    const r = this.canvas.getBoundingClientRect();
    return [(e.clientX - r.left) * (this.canvas.width / r.width), (e.clientY - r.top) * (this.canvas.height / r.height)];
  }

  dot([x, y], w) {
    this.ctx.beginPath();
    this.ctx.arc(x, y, w / 2, 0, 2 * Math.PI);
    this.ctx.fillStyle = "#000";
    this.ctx.fill();
  }

  segment(a, b, w) {
    const c = this.ctx;
    c.strokeStyle = "#000";
    c.lineWidth = w;
    c.lineCap = "round";
    c.lineJoin = "round";
    c.beginPath();
    c.moveTo(a[0], a[1]);
    c.lineTo(b[0], b[1]);
    c.stroke();
  }

  redraw() {
    this.paper();
    for (const s of this.strokes) {
      this.dot(s.points[0], s.width);
      for (let i = 1; i < s.points.length; i++) this.segment(s.points[i - 1], s.points[i], s.width);
    }
  }

  bind() {
    const cv = this.canvas;
    cv.addEventListener("pointerdown", (e) => {
      if (e.button !== 0 && e.pointerType === "mouse") return;
      e.preventDefault();
      cv.setPointerCapture(e.pointerId);
      this.current = { width: this.width(), points: [this.point(e)], id: e.pointerId };
      this.strokes.push(this.current);
      this.dot(this.current.points[0], this.current.width);
      this.request();
    });
    cv.addEventListener("pointermove", (e) => {
      if (!this.current || e.pointerId !== this.current.id) return;
      e.preventDefault();
      const events = e.getCoalescedEvents ? e.getCoalescedEvents() : [e];
      for (const ev of events.length ? events : [e]) {
        const p = this.point(ev);
        const pts = this.current.points;
        this.segment(pts[pts.length - 1], p, this.current.width);
        pts.push(p);
      }
      this.request();
    });
    const end = (e) => {
      if (!this.current || e.pointerId !== this.current.id) return;
      this.current = null;
      const upAt = performance.now();
      this.request().then(() => {
        if (this.session) stats.penUp.push(performance.now() - upAt);  // answered here, not by the server
        this.deliver();
      });
    };
    cv.addEventListener("pointerup", end);
    cv.addEventListener("pointercancel", end);
    this.$(".undo").addEventListener("click", () => {
      this.strokes.pop();
      this.redraw();
      this.request().then(() => this.deliver());
    });
    this.$(".clear").addEventListener("click", () => {
      this.strokes = [];
      this.redraw();
      this.request().then(() => this.deliver());
    });
  }

  // Ask for an inference on the canvas as it is now; resolves when the loop has read the latest strokes.
  request() {
    if (this.busy) {
      this.again = true;
      return this.busy;
    }
    this.busy = (async () => {
      do {
        this.again = false;
        await this.infer();
      } while (this.again);
      this.busy = null;
    })();
    return this.busy;
  }

  async infer() {
    const { width, height } = this.canvas;
    const started = performance.now();
    const rgba = this.ctx.getImageData(0, 0, width, height).data;
    const framed = prepareCanvas(rgba, width, height, this.data.framing);
    this.framed = framed;
    if (!framed || !this.session) {
      this.probs = this.score = null;
      if (!framed) this.show(null);
      return;
    }
    const input = new this.ort.Tensor("float32", Float32Array.from(framed), [1, 28, 28, 1]);
    const out = await this.session.run({ [this.session.inputNames[0]]: input });
    this.probs = out[this.session.outputNames[0]].data;
    // The run's "none of these" score (kmnist.unknown), where its export carries one.
    this.score = this.session.outputNames.length > 1 ? out[this.session.outputNames[1]].data[0] : null;
    this.ms = performance.now() - started;
    stats.infer.push(this.ms);
    stats.answers++;
    this.show(this.probs);
  }

  show(probs) {
    const top1 = this.$(".best .char");
    const list = this.$(".top5");
    const framedCtx = this.$(".framed").getContext("2d");
    this.showUnknown(probs);
    if (!probs) {
      top1.textContent = "";
      this.$(".romaji").textContent = this.$(".kanji").textContent = this.$(".prob").textContent = "";
      list.replaceChildren();
      framedCtx.clearRect(0, 0, 28, 28);
      return;
    }
    const classes = this.data.classes;
    const order = Array.from(probs.keys()).sort((a, b) => probs[b] - probs[a]).slice(0, 5);
    const best = classes[order[0]];
    top1.textContent = best.char;
    this.$(".romaji").textContent = best.romaji;
    this.$(".kanji").textContent = best.kanji ? `from ${best.kanji}` : "";
    const by = this.ms === null ? "read on the server" : `${this.ms.toFixed(1)} ms`;
    this.$(".prob").textContent = `${(100 * probs[order[0]]).toFixed(1)}% · ${by}`;
    list.replaceChildren(...order.map((i) => {
      const li = document.createElement("li");
      const c = classes[i];
      const cells = [["c", c.char], ["r", c.romaji], ["k", c.kanji || ""], ["bar", ""],
        ["p", `${(100 * probs[i]).toFixed(1)}%`]];
      for (const [cls, text] of cells) {
        const span = document.createElement("span");
        span.className = cls;
        span.textContent = text;
        if (cls === "bar") span.style.width = `${Math.max(2, 100 * probs[i])}%`;
        li.append(span);
      }
      return li;
    }));
    const img = framedCtx.createImageData(28, 28);
    this.framed.forEach((v, i) => img.data.set([v, v, v, 255], 4 * i));
    framedCtx.putImageData(img, 0, 0);
  }

  // The run's "none of these" rule, as Python applies it (kmnist.unknown.Rule.flags): a score above the threshold.
  isUnknown() {
    const threshold = this.data.unknown;
    return threshold != null && this.score != null && this.score > threshold;
  }

  showUnknown(probs) {
    const note = this.$(".unknown");
    note.hidden = !(probs && this.isUnknown());
    note.textContent = `Looks like none of the ${this.data.classes.length} characters this model knows`;
  }

  // Hand the finished drawing to Python (one rerun per pen up); null when the canvas holds no ink. Without
  // probabilities (no model here yet) the server reads it and answers through data.answer.
  deliver() {
    if (!this.send) return;
    this.sent = this.framed ? toBase64(this.framed) : null;
    if (!this.sent) {
      this.send("drawing", null);
      return;
    }
    this.send("drawing", {
      image: this.sent, probs: this.probs ? Array.from(this.probs) : null, png: this.canvas.toDataURL("image/png"),
      score: this.score, seq: ++this.seq,  // a new value per pen-up, so drawing the same again still reaches Python
    });
  }
}

export default function (component) {
  const { data, parentElement, setStateValue } = component;
  let live = instances.get(parentElement);
  if (!live) {
    live = new LiveCanvas(parentElement);
    instances.set(parentElement, live);
  }
  live.update(data, setStateValue);
}
