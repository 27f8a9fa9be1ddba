/**
 * Front end of `lucidwidget.LucidWidget`: controls mirrored by synced traits, live tiles drawn from
 * binary PNG frames, a progress bar, an objective sparkline, a strip of past renders, and the explain
 * panel (explain.js).
 *
 * Plain ESM served by anywidget. Python owns the state: every control writes a trait and redraws from
 * the trait, so code and UI stay in step and a re-opened view rebuilds itself. Text from Python is set
 * with `textContent`, never `innerHTML`. `render` returns a cleanup that undoes every listener, timer,
 * object URL and bitmap it made. This is the entry module: lucidwidget/widget/esm.py inlines the
 * siblings it imports (controls.js, explain.js) into the one module anywidget serves.
 *
 * @typedef {import("./controls.js").Model} Model
 * @typedef {{ name: string, channels: number, kind: string }} LayerInfo
 */
import { caption, checkControl, h, input, lifetime, numberControl, section, selectControl, write } from "./controls.js";
import { explainView, styleImageRow } from "./explain.js";

/** Sparkline drawing area in SVG user units; CSS scales it. */
const SPARK_WIDTH = 160;
const SPARK_HEIGHT = 32;
const SVG_NS = "http://www.w3.org/2000/svg";

/** Objective kinds as [trait value, label]. */
const OBJECTIVES = [
  ["channel", "channel"],
  ["neuron", "neuron (centre)"],
  ["deepdream", "layer (DeepDream)"],
  ["class_logit", "class logit"],
  ["random_direction", "random direction"],
  ["expression", "expression (type it below)"],
];
/** Objective kinds that ignore the channel index. */
const CHANNEL_FREE = new Set(["deepdream", "random_direction", "expression"]);
/** Modes as [trait value, label]. */
const MODES = [
  ["standard", "standard"],
  ["transparency", "transparency (alpha)"],
  ["interpolation", "interpolation (channel → channel B)"],
  ["caricature", "caricature of the image"],
  ["style", "style transfer onto the image"],
  ["dream", "dream into the image"],
];
/** Modes that start from the widget's image. */
const IMAGE_MODES = new Set(["caricature", "style", "dream"]);
/** Backgrounds transparent tiles are shown over, as [trait value, label]. */
const BACKGROUNDS = [
  ["checkerboard", "checkerboard"],
  ["white", "white"],
  ["black", "black"],
];

/** Numeric controls: slider bounds (Python may go beyond them; the entry shows the exact value). */
const NUMBERS = {
  channel: { label: "channel", min: 0, max: 0, step: 1, integer: true },
  channel_b: { label: "channel B", min: 0, max: 0, step: 1, integer: true },
  opacity: { label: "opacity", min: 0, max: 1, step: 0.05 },
  steps: { label: "steps", min: 16, max: 2048, step: 16, integer: true },
  learning_rate: { label: "learning rate", min: 0.005, max: 0.2, step: 0.005 },
  size: { label: "size (px)", min: 32, max: 384, step: 16, integer: true },
  tiles: { label: "tiles", min: 1, max: 8, step: 1, integer: true },
  diversity: { label: "diversity", min: 0, max: 50, step: 0.5 },
  jitter: { label: "jitter (× side)", min: 0, max: 0.25, step: 0.005 },
  scale: { label: "scale ±", min: 0, max: 0.5, step: 0.01 },
  rotate: { label: "rotate (°)", min: 0, max: 45, step: 1 },
  seed: { label: "seed", min: 0, max: 2147483647, step: 1, integer: true, entryOnly: true },
};

const BUTTONS = [
  ["run", "Run", "Start a render with the current settings"],
  ["stop", "Stop", "Stop the render; the tiles stay"],
  ["reset", "Reset", "Start again from a new random image (new seed)"],
  ["save_png", "Save PNG", "Save the tiles next to the notebook"],
  ["save_gif", "Save GIF", "Save the last render as an animated GIF next to the notebook"],
];

/**
 * A text box bound to the `expression` trait. The text reaches Python on Enter or when the box loses
 * focus, not on every keystroke, so a half-typed expression never starts a render.
 * @returns {{ row: HTMLElement, box: HTMLInputElement }}
 */
function expressionControl(model, life) {
  const row = h("label", "lw-row lw-expression-row");
  const box = input("text");
  box.classList.add("lw-expression");
  box.dataset.trait = "expression";
  box.placeholder = "block4_conv3:42 - 0.5*block5_conv1:7";
  box.spellcheck = false;
  box.title = "Objective expression: layer:channel terms, numbers, + - * /, functions such as tv(); Enter applies";
  row.append(h("span", "lw-label", "expression"), box);
  const apply = () => write(model, "expression", box.value);
  life.listen(box, "keydown", (event) => {
    if (/** @type {KeyboardEvent} */ (event).key === "Enter") apply();
  });
  life.listen(box, "change", apply);
  const sync = () => {
    if (document.activeElement !== box) box.value = model.get("expression");
  };
  life.watch("change:expression", sync);
  sync();
  return { row, box };
}

/**
 * Draws objective values as a polyline scaled to their own range.
 * @param {SVGPolylineElement} line @param {number[]} values
 */
function drawSparkline(line, values) {
  if (values.length < 2) {
    line.setAttribute("points", "");
    return;
  }
  const low = Math.min(...values);
  const span = Math.max(...values) - low || 1;
  const points = values.map((value, i) => {
    const x = (i / (values.length - 1)) * SPARK_WIDTH;
    const y = SPARK_HEIGHT - ((value - low) / span) * SPARK_HEIGHT;
    return `${x.toFixed(1)},${y.toFixed(1)}`;
  });
  line.setAttribute("points", points.join(" "));
}

/**
 * Shows the canvas at the largest whole number of device pixels per image pixel that fits the tiles
 * column (`--lw-tiles-width`), so every image pixel is the same crisp square (CSS `pixelated`); a sheet
 * wider than the column is shrunk to fit, smoothly.
 * @param {HTMLCanvasElement} canvas @param {HTMLElement} root
 */
function fitTiles(canvas, root) {
  const column = parseFloat(getComputedStyle(root).getPropertyValue("--lw-tiles-width")) || canvas.width;
  const ratio = window.devicePixelRatio || 1;
  const scale = Math.floor((column * ratio) / canvas.width);
  canvas.classList.toggle("lw-shrunk", scale < 1);
  canvas.style.width = scale < 1 ? `${column}px` : `${(canvas.width * scale) / ratio}px`;
}

/**
 * Live tiles on a canvas: each PNG frame is decoded off-screen, then drawn over the last one, so the
 * picture never blanks. Frames decoded out of order are dropped.
 */
function tilesView(model, life, root) {
  const canvas = /** @type {HTMLCanvasElement} */ (h("canvas", "lw-tiles"));
  canvas.width = 1;
  canvas.height = 1;
  const context = canvas.getContext("2d");
  let requested = 0;
  let drawn = 0;
  let frames = 0;
  let disposed = false;
  life.onDispose(() => {
    disposed = true;
  });

  const show = () => {
    /** @type {DataView | null} */
    const data = model.get("frame");
    if (!data || data.byteLength === 0) return;
    const ticket = ++requested;
    const runId = String(model.get("run_id"));
    const step = String(model.get("step"));
    // `new Blob([view])` copies exactly the view's bytes, honouring its byteOffset.
    createImageBitmap(new Blob([data], { type: "image/png" })).then(
      (bitmap) => {
        if (disposed || ticket < drawn) {
          bitmap.close();
          return;
        }
        drawn = ticket;
        if (canvas.width !== bitmap.width || canvas.height !== bitmap.height) {
          canvas.width = bitmap.width;
          canvas.height = bitmap.height;
        }
        fitTiles(canvas, root);
        context.clearRect(0, 0, canvas.width, canvas.height);
        context.drawImage(bitmap, 0, 0);
        bitmap.close();
        frames += 1;
        root.dataset.frames = String(frames);
        root.dataset.frameRun = runId;
        root.dataset.frameStep = step;
      },
      () => {},
    );
  };
  life.watch("change:frame", show);
  show();
  return canvas;
}

/**
 * The strip of past renders; clicking one asks Python to restore its settings. A render the user stopped
 * is marked, with the step it reached in its tooltip.
 */
function historyView(model, life) {
  const strip = h("div", "lw-history");
  /** @type {string[]} */
  let urls = [];
  const revoke = () => {
    for (const url of urls) URL.revokeObjectURL(url);
    urls = [];
  };
  life.onDispose(revoke);
  const rebuild = () => {
    revoke();
    const items = model.get("history").map((entry) => {
      const item = /** @type {HTMLButtonElement} */ (h("button", "lw-history-item"));
      item.type = "button";
      const steps = entry.settings.steps;
      item.title = `Restore: ${entry.summary}${entry.stopped ? ` (stopped at step ${entry.step} of ${steps})` : ""}`;
      item.dataset.historyId = String(entry.id);
      item.classList.toggle("lw-history-stopped", Boolean(entry.stopped));
      const url = URL.createObjectURL(new Blob([entry.thumbnail], { type: "image/png" }));
      urls.push(url);
      const thumb = /** @type {HTMLImageElement} */ (h("img", "lw-thumb"));
      thumb.src = url;
      thumb.alt = entry.label;
      item.append(thumb, caption(entry.label));
      if (entry.stopped) item.append(h("span", "lw-badge", "stopped"));
      life.listen(item, "click", () => model.send({ event: "restore", id: entry.id }));
      return item;
    });
    strip.replaceChildren(...items);
    strip.hidden = items.length === 0;
  };
  life.watch("change:history", rebuild);
  rebuild();
  return strip;
}

/** @param {{ model: Model, el: HTMLElement }} view */
function render({ model, el }) {
  const life = lifetime(model);
  const root = h("div", "lw-root");

  // Left: tiles, progress, status, error.
  const view = h("div", "lw-view");
  const tiles = tilesView(model, life, root);
  const progress = h("div", "lw-progress");
  const fill = h("div", "lw-progress-fill");
  progress.append(fill);
  const status = h("div", "lw-status");
  const notice = h("div", "lw-notice");
  const error = h("div", "lw-error");
  error.setAttribute("role", "alert");
  const stats = h("div", "lw-stats");
  const spark = document.createElementNS(SVG_NS, "svg");
  spark.setAttribute("class", "lw-spark");
  spark.setAttribute("viewBox", `0 0 ${SPARK_WIDTH} ${SPARK_HEIGHT}`);
  spark.setAttribute("preserveAspectRatio", "none");
  const line = /** @type {SVGPolylineElement} */ (document.createElementNS(SVG_NS, "polyline"));
  spark.append(line);
  const speed = h("span", "lw-speed");
  stats.append(spark, speed);
  const buttons = h("div", "lw-buttons");
  for (const [event, label, title] of BUTTONS) {
    const button = /** @type {HTMLButtonElement} */ (h("button", `lw-button lw-${event}`, label));
    button.type = "button";
    button.title = title;
    button.dataset.event = event;
    life.listen(button, "click", () => model.send({ event }));
    buttons.append(button);
  }
  view.append(tiles, progress, status, stats, buttons, notice, error);

  // Right: controls.
  /** @type {() => LayerInfo[]} */
  const layers = () => model.get("layers");
  const layer = selectControl(model, life, "layer", "layer", () =>
    layers().map((info) => [info.name, `${info.name} (${info.channels})`]),
  );
  life.watch("change:layers", layer.rebuild);
  const kind = selectControl(model, life, "objective", "objective", () => OBJECTIVES);
  const mode = selectControl(model, life, "mode", "mode", () => MODES);
  const background = selectControl(model, life, "background", "background", () => BACKGROUNDS);
  const expression = expressionControl(model, life);
  const numbers = Object.fromEntries(
    Object.entries(NUMBERS).map(([name, spec]) => [name, numberControl(model, life, name, spec)]),
  );
  const explain = explainView(model, life, root);
  const styleRow = styleImageRow(model, life, explain.say, explain.alive);
  const check = (name, label) => checkControl(model, life, name, label).row;
  const transformRow = (toggle, name) => {
    const row = numbers[name].row;
    row.prepend(checkControl(model, life, toggle, "").box);
    return row;
  };

  const channelBounds = () => {
    const info = layers().find((entry) => entry.name === model.get("layer"));
    const top = info ? Math.max(info.channels - 1, 0) : 0;
    const interpolating = model.get("mode") === "interpolation";
    for (const name of ["channel", "channel_b"]) {
      const { range, entry, row, sync } = numbers[name];
      const free = name === "channel" && !interpolating && CHANNEL_FREE.has(model.get("objective"));
      for (const node of [range, entry]) {
        node.max = String(top);
        node.disabled = free;
      }
      row.title = info ? `${info.name}: channels 0–${top}` : "";
      sync();
    }
    // Rows that mean something only in one mode or objective kind are hidden otherwise.
    numbers.channel_b.row.hidden = !interpolating;
    kind.row.hidden = interpolating;
    expression.row.hidden = interpolating || model.get("objective") !== "expression";
    const transparent = model.get("mode") === "transparency";
    numbers.opacity.row.hidden = !transparent;
    background.row.hidden = !transparent;
    styleRow.hidden = model.get("mode") !== "style";
    root.classList.toggle("lw-image-mode", IMAGE_MODES.has(model.get("mode")));
  };
  life.watch("change:layer change:layers change:objective change:mode", channelBounds);
  channelBounds();

  const controls = h("div", "lw-controls");
  controls.append(
    section("Objective", [
      mode.row, styleRow, layer.row, numbers.channel.row, numbers.channel_b.row, kind.row, expression.row,
      numbers.opacity.row, background.row, check("negative", "negative"),
      check("preactivation", "pre-activation"),
    ], true),
    section("Optimization", [numbers.steps.row, numbers.learning_rate.row, numbers.seed.row], true),
    section("Image", [
      numbers.size.row, numbers.tiles.row, numbers.diversity.row,
      check("fft", "FFT parameterization"), check("decorrelate", "decorrelate colours"),
    ], false),
    section("Transforms", [
      transformRow("use_jitter", "jitter"), transformRow("use_scale", "scale"), transformRow("use_rotate", "rotate"),
    ], false),
  );

  const main = h("div", "lw-main");
  main.append(view, controls);
  root.append(main, explain.panel, historyView(model, life));

  const update = () => {
    const steps = (model.get("run_settings") || {}).steps || model.get("steps");
    const step = model.get("step");
    fill.style.width = `${Math.min(100, (100 * step) / Math.max(steps, 1))}%`;
    status.textContent = model.get("status");
    notice.textContent = model.get("notice");
    const message = model.get("error");
    error.textContent = message;
    error.hidden = !message;
    const rate = model.get("steps_per_sec");
    speed.textContent = model.get("compiling") ? "compiling…" : rate > 0 ? `${rate.toFixed(1)} steps/s` : "";
    drawSparkline(line, model.get("losses"));
    // Tiles, progress and rate of an earlier render, while the latest settings failed or wait for input.
    const stale = model.get("stale");
    root.classList.toggle("lw-stale", stale);
    tiles.title = stale ? "Not a result of the current settings (see the message below)" : "";
    root.dataset.running = String(model.get("running"));
    root.dataset.step = String(step);
    root.dataset.runId = String(model.get("run_id"));
    root.dataset.stale = String(stale);
    root.classList.toggle("lw-running", model.get("running"));
  };
  life.watch(
    "change:step change:status change:notice change:error change:steps_per_sec change:compiling change:losses " +
      "change:running change:run_id change:run_settings change:steps change:stale",
    update,
  );
  update();

  el.append(root);
  return () => {
    life.dispose();
    root.remove();
  };
}

export default { render };
