/**
 * The explain panel: the image with the heat map of the current target over it, the model's top
 * outputs, the chosen layer's top channels as feature-visualization thumbnails, and the ways in: a file
 * dropped on the widget, the file picker, or a bundled photo.
 *
 * Python owns the state (`image`, `heatmap`, `top_outputs`, `top_channels`, ...); files travel to it as
 * one binary buffer in a custom message, `{ event: "image", name }`, and clicks as messages too
 * (`channel`, `output`, `clear_image`). The opacity only changes how the page draws: no recompute.
 *
 * @typedef {import("./controls.js").Model} Model
 * @typedef {ReturnType<typeof import("./controls.js").lifetime>} Lifetime
 */
import { h, input, numberControl, selectControl } from "./controls.js";

/** Largest file sent to the kernel (bytes): Jupyter's websocket (Tornado) refuses messages over 10 MiB. */
const MAX_UPLOAD_BYTES = 8 * 1024 * 1024;
/** Attribution methods as [trait value, label]; the slower ones say so. */
const METHODS = [
  ["gradcam", "Grad-CAM"],
  ["gradcam++", "Grad-CAM++"],
  ["gradient", "gradient"],
  ["smoothgrad", "SmoothGrad (slower)"],
  ["integrated_gradients", "Integrated Gradients (slower)"],
  ["scorecam", "Faster Score-CAM (slower)"],
];
/** The heat map's opacity slider (display only). */
const HEATMAP_OPACITY = { label: "heat map", min: 0, max: 1, step: 0.05 };

/**
 * Decodes PNG bytes from Python (a DataView) into a bitmap; null for none.
 * @param {DataView | null} data
 * @returns {Promise<ImageBitmap | null>}
 */
function decodePng(data) {
  if (!data || data.byteLength === 0) return Promise.resolve(null);
  // `new Blob([view])` copies exactly the view's bytes, honouring its byteOffset.
  return createImageBitmap(new Blob([data], { type: "image/png" }));
}

/**
 * Object URLs for PNG bytes, revoked together (on each rebuild and when the view goes).
 * @param {Lifetime} life
 */
function urlPool(life) {
  /** @type {string[]} */
  let urls = [];
  const revoke = () => {
    for (const url of urls) URL.revokeObjectURL(url);
    urls = [];
  };
  life.onDispose(revoke);
  return {
    revoke,
    /** @param {DataView} data */
    url(data) {
      const url = URL.createObjectURL(new Blob([data], { type: "image/png" }));
      urls.push(url);
      return url;
    },
  };
}

/**
 * Sends a file's bytes to Python as the image (or style image), or says in `say` why it cannot.
 * @param {Model} model @param {string} event "image" or "style_image" @param {File} file
 * @param {(text: string) => void} say @param {() => boolean} alive
 */
function sendFile(model, event, file, say, alive) {
  if (file.size > MAX_UPLOAD_BYTES) {
    const megabytes = (file.size / 1024 / 1024).toFixed(1);
    say(`${file.name} is ${megabytes} MB; images up to ${MAX_UPLOAD_BYTES / 1024 / 1024} MB reach the kernel.`);
    return;
  }
  say("");
  file.arrayBuffer().then((buffer) => {
    if (alive()) model.send({ event, name: file.name }, undefined, [buffer]);
  });
}

/**
 * A hidden file picker and the button that opens it; a picked file goes to Python as `event`.
 * @returns {{ button: HTMLButtonElement, picker: HTMLInputElement }}
 */
function filePicker(model, life, event, label, say, alive) {
  const picker = input("file");
  picker.accept = "image/*";
  picker.hidden = true;
  picker.dataset.event = event;
  const button = /** @type {HTMLButtonElement} */ (h("button", "lw-button", label));
  button.type = "button";
  life.listen(button, "click", () => picker.click());
  life.listen(picker, "change", () => {
    const file = picker.files && picker.files[0];
    if (file) sendFile(model, event, file, say, alive);
    picker.value = "";
  });
  return { button, picker };
}

/**
 * Buttons that pick one of the bundled photos (`photos`) for `event`.
 * @returns {HTMLElement}
 */
function photoButtons(model, life, event) {
  const row = h("span", "lw-photos");
  const rebuild = () => {
    row.replaceChildren(...model.get("photos").map((name) => {
      const button = /** @type {HTMLButtonElement} */ (h("button", "lw-link", name));
      button.type = "button";
      button.dataset.photo = name;
      life.listen(button, "click", () => model.send({ event, photo: name }));
      return button;
    }));
  };
  life.watch("change:photos", rebuild);
  rebuild();
  return row;
}

/**
 * The image with the heat map drawn over it at `heatmap_opacity`. Both are decoded once per change;
 * the opacity slider only redraws. Stale decodes are dropped.
 */
function pictureView(model, life, root) {
  const canvas = /** @type {HTMLCanvasElement} */ (h("canvas", "lw-explain-canvas"));
  canvas.width = 1;
  canvas.height = 1;
  const context = canvas.getContext("2d");
  /** @type {{ image: ImageBitmap | null, heat: ImageBitmap | null }} */
  const shown = { image: null, heat: null };
  const tickets = { image: 0, heat: 0 };
  let disposed = false;
  life.onDispose(() => {
    disposed = true;
    for (const bitmap of Object.values(shown)) if (bitmap) bitmap.close();
  });

  const draw = () => {
    if (!shown.image) return;
    if (canvas.width !== shown.image.width || canvas.height !== shown.image.height) {
      canvas.width = shown.image.width;
      canvas.height = shown.image.height;
    }
    context.globalAlpha = 1;
    context.drawImage(shown.image, 0, 0);
    if (shown.heat) {
      context.globalAlpha = Math.min(1, Math.max(0, model.get("heatmap_opacity")));
      context.drawImage(shown.heat, 0, 0, canvas.width, canvas.height);
    }
  };
  /** @param {"image" | "heat"} which @param {string} trait */
  const load = (which, trait) => {
    const ticket = ++tickets[which];
    const id = String(model.get("explain_id"));
    decodePng(model.get(trait)).then(
      (bitmap) => {
        if (disposed || ticket !== tickets[which]) {
          if (bitmap) bitmap.close();
          return;
        }
        if (shown[which]) shown[which].close();
        shown[which] = bitmap;
        draw();
        if (which === "heat") root.dataset.heatmapShown = bitmap ? id : "";
      },
      () => {},
    );
  };
  life.watch("change:image", () => load("image", "image"));
  life.watch("change:heatmap", () => load("heat", "heatmap"));
  life.watch("change:heatmap_opacity", draw);
  load("image", "image");
  load("heat", "heatmap");
  return canvas;
}

/** The top outputs: a button per class (or channel) that sends the tiles to it, with its value. */
function outputsView(model, life) {
  const box = h("div", "lw-outputs");
  const title = h("div", "lw-explain-title", "Top outputs");
  const note = h("div", "lw-explain-note");
  const list = h("div", "lw-output-list");
  box.append(title, note, list);
  const rebuild = () => {
    const names = new Set(model.get("layers").map((info) => info.name));
    note.textContent = model.get("outputs_note");
    list.replaceChildren(...model.get("top_outputs").map((entry) => {
      const label = entry.classes ? entry.name || `class ${entry.index}` : `${entry.layer}:${entry.index}`;
      const value = entry.classes ? `${(100 * entry.value).toFixed(1)}%` : entry.value.toPrecision(3);
      const item = /** @type {HTMLButtonElement} */ (h("button", "lw-output"));
      item.type = "button";
      item.dataset.index = String(entry.index);
      item.append(h("span", "lw-output-name", label), h("span", "lw-output-value", value));
      const bar = h("span", "lw-output-bar");
      bar.style.width = entry.classes ? `${Math.round(100 * entry.value)}%` : "0";
      item.append(bar);
      item.disabled = !names.has(entry.layer);
      item.title = entry.classes ? `Render the logit of ${label} (${entry.layer}:${entry.index})`
        : `Render ${entry.layer}:${entry.index}`;
      life.listen(item, "click", () => model.send({ event: "output", index: entry.index }));
      return item;
    }));
    box.hidden = model.get("top_outputs").length === 0;
  };
  life.watch("change:top_outputs change:outputs_note change:layers", rebuild);
  rebuild();
  return box;
}

/**
 * The layer's top channels as thumbnails of their feature visualizations (rendering while they
 * sharpen); a click sends the tiles to that channel.
 */
function channelsView(model, life, root) {
  const box = h("div", "lw-top-channels");
  const title = h("div", "lw-explain-title");
  const note = h("div", "lw-explain-note");
  const grid = h("div", "lw-channel-grid");
  box.append(title, note, grid);
  const urls = urlPool(life);
  const rebuild = () => {
    urls.revoke();
    const entries = model.get("top_channels");
    const layer = model.get("layer");
    title.textContent = `Top channels of ${layer}`;
    note.textContent = model.get("channels_note");
    grid.replaceChildren(...entries.map((entry) => {
      const item = /** @type {HTMLButtonElement} */ (h("button", "lw-channel"));
      item.type = "button";
      item.dataset.channel = String(entry.channel);
      if (entry.thumbnail && entry.thumbnail.byteLength) {
        const thumb = /** @type {HTMLImageElement} */ (h("img", "lw-thumb"));
        thumb.src = urls.url(entry.thumbnail);
        thumb.alt = `${layer}:${entry.channel}`;
        item.append(thumb);
      } else {
        item.append(h("span", "lw-thumb lw-thumb-empty", "…"));
      }
      item.classList.toggle("lw-rendering", !entry.rendered);
      const value = entry.attribution === null ? entry.activation : entry.attribution;
      item.append(h("span", "lw-caption", `${entry.channel} · ${value.toPrecision(3)}`));
      const attribution = entry.attribution === null ? "" : `, attribution ${entry.attribution.toPrecision(3)}`;
      item.title = `${layer}:${entry.channel}: mean activation ${entry.activation.toPrecision(3)}${attribution}. ` +
        "Click to render it.";
      life.listen(item, "click", () => model.send({ event: "channel", channel: entry.channel }));
      return item;
    }));
    box.hidden = entries.length === 0;
    root.dataset.thumbnails = String(entries.filter((entry) => entry.rendered).length);
  };
  life.watch("change:top_channels change:channels_note", rebuild);
  rebuild();
  return box;
}

/**
 * The style image for the style mode: a preview, the bundled photos and a file picker.
 * @returns {HTMLElement}
 */
export function styleImageRow(model, life, say, alive) {
  const row = h("div", "lw-row lw-style-row");
  const preview = /** @type {HTMLImageElement} */ (h("img", "lw-style-preview"));
  preview.alt = "style image";
  const urls = urlPool(life);
  const { button, picker } = filePicker(model, life, "style_image", "file…", say, alive);
  row.append(h("span", "lw-label", "style image"), preview, photoButtons(model, life, "style_image"), button, picker);
  const sync = () => {
    urls.revoke();
    const data = model.get("style_image");
    preview.hidden = !data || data.byteLength === 0;
    if (!preview.hidden) preview.src = urls.url(data);
  };
  life.watch("change:style_image", sync);
  sync();
  return row;
}

/**
 * The explain panel and the widget-wide drop target. Without an image it is one line (a picker, the
 * bundled photos, "or drop one here"); with one, the picture, the outputs and the channels.
 * @param {Model} model @param {Lifetime} life @param {HTMLElement} root the widget's root (drop target)
 * @returns {{ panel: HTMLElement, say: (text: string) => void, alive: () => boolean }}
 */
export function explainView(model, life, root) {
  let disposed = false;
  life.onDispose(() => {
    disposed = true;
  });
  const alive = () => !disposed;
  const panel = h("div", "lw-explain");
  const error = h("div", "lw-explain-error");
  error.setAttribute("role", "alert");
  let local = "";
  const showError = () => {
    const text = local || model.get("explain_error");
    error.textContent = text;
    error.hidden = !text;
  };
  /** A sentence of the page's own (a file too large), shown until the next file or message. */
  const say = (text) => {
    local = text;
    showError();
  };
  life.watch("change:explain_error", () => {
    local = "";
    showError();
  });

  const bar = h("div", "lw-explain-bar");
  const { button, picker } = filePicker(model, life, "image", "Explain an image…", say, alive);
  button.classList.add("lw-explain-open");
  const clear = /** @type {HTMLButtonElement} */ (h("button", "lw-button lw-clear-image", "Clear image"));
  clear.type = "button";
  clear.title = "Leave explain mode";
  life.listen(clear, "click", () => model.send({ event: "clear_image" }));
  const hint = h("span", "lw-explain-hint", "or drop one on the widget · or try");
  bar.append(button, picker, hint, photoButtons(model, life, "image"), clear);

  const picture = h("div", "lw-explain-picture");
  const method = selectControl(model, life, "method", "method", () => METHODS);
  const opacity = numberControl(model, life, "heatmap_opacity", HEATMAP_OPACITY);
  const status = h("div", "lw-explain-status");
  picture.append(pictureView(model, life, root), method.row, opacity.row, status);
  const body = h("div", "lw-explain-body");
  body.append(picture, outputsView(model, life), channelsView(model, life, root));
  panel.append(bar, error, body);

  const update = () => {
    const data = model.get("image");
    const shown = Boolean(data && data.byteLength);
    body.hidden = !shown;
    clear.hidden = !shown;
    button.textContent = shown ? "Another image…" : "Explain an image…";
    status.textContent = model.get("explain_status");
    panel.classList.toggle("lw-explaining", model.get("explaining"));
    root.dataset.explainId = String(model.get("explain_id"));
    root.dataset.explaining = String(model.get("explaining"));
    root.dataset.image = String(shown);
  };
  life.watch("change:image change:explain_status change:explaining change:explain_id", update);
  update();
  showError();

  // Any file dropped on the widget becomes the image.
  const over = (/** @type {DragEvent} */ event) => {
    if (!event.dataTransfer || !Array.from(event.dataTransfer.types).includes("Files")) return;
    event.preventDefault();
    event.stopPropagation();
    event.dataTransfer.dropEffect = "copy";
    root.classList.add("lw-dropping");
  };
  life.listen(root, "dragenter", over);
  life.listen(root, "dragover", over);
  life.listen(root, "dragleave", (event) => {
    if (!root.contains(/** @type {DragEvent} */ (event).relatedTarget)) root.classList.remove("lw-dropping");
  });
  life.listen(root, "drop", (event) => {
    const drop = /** @type {DragEvent} */ (event);
    root.classList.remove("lw-dropping");
    const file = drop.dataTransfer && drop.dataTransfer.files[0];
    if (!file) return;
    drop.preventDefault();
    drop.stopPropagation();
    sendFile(model, "image", file, say, alive);
  });
  return { panel, say, alive };
}
