/**
 * Building blocks of the widget's views: elements, inputs JupyterLab's shortcuts leave alone, a view's
 * lifetime (every listener, timer and model callback undone by one call), debounced trait writes, and
 * controls bound to traits (slider + entry, checkbox, menu), sections and captions.
 *
 * @typedef {{ get(name: string): any, set(name: string, value: any): void, save_changes(): void,
 *   send(content: object, callbacks?: object, buffers?: ArrayBuffer[]): void,
 *   on(event: string, callback: Function): void, off(event: string, callback: Function): void }} Model
 * @typedef {{ label: string, min: number, max: number, step: number, integer?: boolean,
 *   entryOnly?: boolean }} NumberSpec
 */

/** Slider drags reach Python once the hand rests this long (ms); a release sends at once. */
export const WRITE_DEBOUNCE_MS = 300;

/**
 * Creates an element with a class and optional text (always as textContent).
 * @param {string} tag
 * @param {string} [className]
 * @param {string} [text]
 * @returns {HTMLElement}
 */
export function h(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

/**
 * An <input> that JupyterLab's keyboard shortcuts leave alone (arrow keys, digits in command mode).
 * @param {string} type
 * @returns {HTMLInputElement}
 */
export function input(type) {
  const node = /** @type {HTMLInputElement} */ (h("input", `lw-${type}`));
  node.type = type;
  node.dataset.lmSuppressShortcuts = "true";
  return node;
}

/**
 * Tracks everything a view creates so that one call undoes it all.
 * @param {Model} model
 */
export function lifetime(model) {
  /** @type {Array<() => void>} */
  const undo = [];
  const timers = new Set();
  return {
    /** @param {EventTarget} target @param {string} type @param {EventListener} fn */
    listen(target, type, fn) {
      target.addEventListener(type, fn);
      undo.push(() => target.removeEventListener(type, fn));
    },
    /** @param {string} events space-separated model events @param {Function} fn */
    watch(events, fn) {
      for (const event of events.split(" ")) {
        model.on(event, fn);
        undo.push(() => model.off(event, fn));
      }
    },
    /**
     * Wraps `fn` so calls within WRITE_DEBOUNCE_MS collapse into the last one.
     * @param {(value: any) => void} fn
     */
    debounce(fn) {
      let timer = null;
      let last;
      const fire = () => {
        timers.delete(timer);
        timer = null;
        fn(last);
      };
      return {
        call(value) {
          last = value;
          if (timer !== null) {
            clearTimeout(timer);
            timers.delete(timer);
          }
          timer = setTimeout(fire, WRITE_DEBOUNCE_MS);
          timers.add(timer);
        },
        flush() {
          if (timer === null) return;
          clearTimeout(timer);
          fire();
        },
        pending: () => timer !== null,
      };
    },
    /** @param {() => void} fn */
    onDispose(fn) {
      undo.push(fn);
    },
    dispose() {
      for (const timer of timers) clearTimeout(timer);
      timers.clear();
      while (undo.length) undo.pop()();
    },
  };
}

/**
 * Writes a trait to Python.
 * @param {Model} model @param {string} name @param {any} value
 */
export function write(model, name, value) {
  model.set(name, value);
  model.save_changes();
}

/**
 * A labelled slider plus number entry bound to a numeric trait. The entry sends what is typed, even out
 * of the slider's range, so Python can say what is wrong with it.
 * @param {Model} model @param {ReturnType<typeof lifetime>} life @param {string} name @param {NumberSpec} spec
 * @returns {{ row: HTMLElement, range: HTMLInputElement, entry: HTMLInputElement, sync: () => void }}
 */
export function numberControl(model, life, name, spec) {
  const row = h("label", "lw-row");
  row.append(h("span", "lw-label", spec.label));
  const range = input("range");
  const entry = input("number");
  for (const node of [range, entry]) {
    node.min = String(spec.min);
    node.max = String(spec.max);
    node.step = String(spec.step);
  }
  entry.dataset.trait = name;
  range.dataset.trait = name;
  if (!spec.entryOnly) row.append(range);
  row.append(entry);

  const parse = (/** @type {HTMLInputElement} */ node) => {
    const value = node.valueAsNumber;
    if (!Number.isFinite(value)) return null;
    return spec.integer ? Math.round(value) : value;
  };
  const send = life.debounce((value) => write(model, name, value));
  life.listen(range, "input", () => {
    entry.value = range.value;
    send.call(parse(range));
  });
  life.listen(range, "change", () => send.flush());
  life.listen(entry, "input", () => {
    const value = parse(entry);
    if (value !== null) send.call(value);
  });
  life.listen(entry, "change", () => {
    const value = parse(entry);
    if (value === null) entry.value = String(model.get(name));
    else {
      send.call(value);
      send.flush();
    }
  });
  const sync = () => {
    if (send.pending()) return;
    const value = model.get(name);
    range.value = String(value);
    if (document.activeElement !== entry) entry.value = String(value);
  };
  life.watch(`change:${name}`, sync);
  sync();
  return { row, range, entry, sync };
}

/**
 * A labelled checkbox bound to a boolean trait.
 * @returns {{ row: HTMLElement, box: HTMLInputElement }}
 */
export function checkControl(model, life, name, label) {
  const row = h("label", "lw-check");
  const box = input("checkbox");
  box.dataset.trait = name;
  row.append(box, h("span", "", label));
  life.listen(box, "change", () => write(model, name, box.checked));
  const sync = () => {
    box.checked = Boolean(model.get(name));
  };
  life.watch(`change:${name}`, sync);
  sync();
  return { row, box };
}

/**
 * A labelled <select> bound to a string trait.
 * @param {() => Array<[string, string]>} options current [value, label] pairs
 * @returns {{ row: HTMLElement, select: HTMLSelectElement, rebuild: () => void }}
 */
export function selectControl(model, life, name, label, options) {
  const row = h("label", "lw-row");
  const select = /** @type {HTMLSelectElement} */ (h("select", "lw-select"));
  select.dataset.trait = name;
  select.dataset.lmSuppressShortcuts = "true";
  row.append(h("span", "lw-label", label), select);
  life.listen(select, "change", () => write(model, name, select.value));
  const rebuild = () => {
    const current = model.get(name);
    const nodes = options().map(([value, text]) => {
      const option = /** @type {HTMLOptionElement} */ (h("option", "", text));
      option.value = value;
      return option;
    });
    if (!nodes.some((option) => option.value === current)) {
      const missing = /** @type {HTMLOptionElement} */ (h("option", "", `${current} (not found)`));
      missing.value = current;
      nodes.push(missing);
    }
    select.replaceChildren(...nodes);
    select.value = current;
  };
  life.watch(`change:${name}`, rebuild);
  rebuild();
  return { row, select, rebuild };
}

/**
 * A titled group of controls; `open` groups start expanded.
 * @param {string} title @param {HTMLElement[]} rows @param {boolean} open
 */
export function section(title, rows, open) {
  const group = /** @type {HTMLDetailsElement} */ (h("details", "lw-section"));
  group.open = open;
  group.append(h("summary", "lw-summary", title), ...rows);
  return group;
}

/**
 * A caption that wraps only after `:`, `·` and spaces (`block5_conv1:` / `100`), never inside a name.
 * @param {string} text
 */
export function caption(text) {
  const node = h("span", "lw-caption");
  text.split(/(?<=[:·\s])/).forEach((part, index) => {
    if (index) node.append(document.createElement("wbr"));
    node.append(part);
  });
  return node;
}

