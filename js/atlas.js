/**
 * Front end of `lucidwidget.Atlas`: an atlas's grid of units, a page at a time, in a notebook.
 *
 * Plain ESM served by anywidget. Python owns the state (layer, channel filter, page; the page's units
 * arrive as PNG/WebP bytes), so a re-opened view rebuilds itself. A click on a unit sends
 * `{event: "open", layer, channel}`; Python steers the live widget. Text from Python is set with
 * `textContent`. `render` returns a cleanup that removes every listener, timer and object URL.
 *
 * @typedef {{ get(name: string): any, set(name: string, value: any): void, save_changes(): void,
 *   send(content: object): void, on(event: string, callback: Function): void,
 *   off(event: string, callback: Function): void }} Model
 * @typedef {{ channel: number, value: number, thumbnail: DataView }} Unit
 */

/** Typing in the channel filter reaches Python once the hand rests this long (ms). */
const FILTER_DEBOUNCE_MS = 300;

/**
 * @param {string} tag
 * @param {string} [className]
 * @param {string} [text]
 */
function h(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

/** @param {number} value */
function fmt(value) {
  if (typeof value !== "number" || !Number.isFinite(value)) return "–";
  const magnitude = Math.abs(value);
  return magnitude !== 0 && (magnitude >= 1e4 || magnitude < 1e-2) ? value.toExponential(2) : value.toFixed(2);
}

/**
 * The bytes of a DataView (respecting its offset) as an image Blob.
 * @param {DataView} view
 */
function blobOf(view) {
  const bytes = new Uint8Array(view.buffer, view.byteOffset, view.byteLength);
  const webp = bytes[8] === 0x57 && bytes[9] === 0x45 && bytes[10] === 0x42 && bytes[11] === 0x50;
  return new Blob([bytes], { type: webp ? "image/webp" : "image/png" });
}

/** @param {{ model: Model, el: HTMLElement }} view */
function render({ model, el }) {
  /** @type {Array<() => void>} */
  const undo = [];
  /** @type {string[]} */
  let urls = [];
  let timer = null;
  const listen = (target, type, fn) => {
    target.addEventListener(type, fn);
    undo.push(() => target.removeEventListener(type, fn));
  };
  const watch = (events, fn) => {
    for (const event of events.split(" ")) {
      model.on(event, fn);
      undo.push(() => model.off(event, fn));
    }
  };
  const setTrait = (name, value) => {
    model.set(name, value);
    model.save_changes();
  };

  const root = h("div", "lwa-root");
  const bar = h("div", "lwa-bar");
  const title = h("span", "lwa-title");
  const layer = /** @type {HTMLSelectElement} */ (h("select", "lwa-layer"));
  const filter = /** @type {HTMLInputElement} */ (h("input", "lwa-filter"));
  filter.type = "search";
  filter.placeholder = "channels: 42 or 0-63";
  filter.dataset.lmSuppressShortcuts = "true";
  const previous = /** @type {HTMLButtonElement} */ (h("button", "lwa-previous", "‹"));
  const next = /** @type {HTMLButtonElement} */ (h("button", "lwa-next", "›"));
  const pageLabel = h("span", "lwa-page");
  previous.type = next.type = "button";
  bar.append(title, layer, filter, previous, pageLabel, next);
  const error = h("div", "lwa-error");
  error.setAttribute("role", "alert");
  const grid = h("div", "lwa-grid");
  const selected = h("div", "lwa-selected");
  root.append(bar, error, grid, selected);

  const drawLayers = () => {
    const options = model.get("layers").map((info) => {
      const option = /** @type {HTMLOptionElement} */ (h("option", "", `${info.name} (${info.units})`));
      option.value = info.name;
      return option;
    });
    layer.replaceChildren(...options);
    layer.value = model.get("layer");
  };

  const drawGrid = () => {
    for (const url of urls) URL.revokeObjectURL(url);
    urls = [];
    const current = model.get("layer");
    /** @type {Unit[]} */
    const units = model.get("units");
    const cells = units.map((unit) => {
      const cell = /** @type {HTMLButtonElement} */ (h("button", "lwa-cell"));
      cell.type = "button";
      cell.dataset.channel = String(unit.channel);
      cell.title = `${current}:${unit.channel} · ${fmt(unit.value)}`;
      const url = URL.createObjectURL(blobOf(unit.thumbnail));
      urls.push(url);
      const img = /** @type {HTMLImageElement} */ (h("img"));
      img.src = url;
      img.alt = `${current}:${unit.channel}`;
      cell.append(img, h("span", "lwa-label", String(unit.channel)));
      return cell;
    });
    grid.replaceChildren(...cells);
    const pages = model.get("pages");
    const page = model.get("page");
    pageLabel.textContent = `${Math.min(page + 1, pages)} / ${pages}`;
    previous.disabled = page <= 0;
    next.disabled = page >= pages - 1;
  };

  const drawState = () => {
    title.textContent = model.get("model_name");
    layer.value = model.get("layer");
    if (document.activeElement !== filter) filter.value = model.get("channels");
    const message = model.get("error");
    error.textContent = message;
    error.hidden = !message;
    const unit = model.get("selected");
    selected.textContent = unit && unit.layer !== undefined
      ? `open in the widget: ${unit.layer}:${unit.channel} (seed ${unit.seed})` : "click a unit to open it live";
  };

  listen(layer, "change", () => setTrait("layer", layer.value));
  listen(filter, "input", () => {
    if (timer !== null) clearTimeout(timer);
    timer = setTimeout(() => {
      timer = null;
      setTrait("channels", filter.value);
    }, FILTER_DEBOUNCE_MS);
  });
  listen(previous, "click", () => setTrait("page", Math.max(0, model.get("page") - 1)));
  listen(next, "click", () => setTrait("page", model.get("page") + 1));
  listen(grid, "click", (event) => {
    const cell = /** @type {HTMLElement} */ (event.target).closest(".lwa-cell");
    if (!cell) return;
    for (const other of grid.querySelectorAll(".lwa-cell.lwa-open")) other.classList.remove("lwa-open");
    cell.classList.add("lwa-open");
    model.send({ event: "open", layer: model.get("layer"), channel: Number(cell.dataset.channel) });
  });
  watch("change:layers", drawLayers);
  watch("change:units change:page change:pages", drawGrid);
  watch("change:layer change:channels change:error change:selected change:model_name", drawState);
  drawLayers();
  drawGrid();
  drawState();

  el.append(root);
  return () => {
    if (timer !== null) clearTimeout(timer);
    while (undo.length) undo.pop()();
    for (const url of urls) URL.revokeObjectURL(url);
    root.remove();
  };
}

export default { render };
