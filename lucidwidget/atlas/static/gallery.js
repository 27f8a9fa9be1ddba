/**
 * The atlas gallery: layers -> a lazily loaded grid of units -> a unit's page (views, values, dataset
 * examples), with a deep link per unit (`index.html#block4_conv3/42`) and filters by layer and channel.
 *
 * A classic script (ES modules do not load from file:// pages). Data arrives as scripts too: the index
 * (`atlas-index.js`) sets `window.LUCIDWIDGET_ATLAS`, and each layer's `manifest.js`, added on demand,
 * calls `window.lucidwidgetAtlasLayer(manifest)`. Text from the data is set with `textContent` only.
 *
 * @typedef {{ name: string, folder: string, units: number, planned: number, examples: boolean,
 *   preview: string[] }} LayerSummary
 * @typedef {{ image: string, value: number, values?: number[] }} View
 * @typedef {{ source: string, image: string, value: number, x: number, y: number }} Example
 * @typedef {{ channel: number, image: string, objective: number, seed: number,
 *   views: Object<string, View>, examples?: Example[] }} Unit
 */
(function () {
  "use strict";

  /** Unit images shown in the grid at this side (CSS pixels); the files are the atlas size. */
  var GRID_SIDE = 128;
  /** Grid cells built per animation frame, so a layer of thousands of units paints at once. */
  var CELLS_PER_FRAME = 400;
  /** Views in the order a unit's page shows them, with their captions. */
  var VIEW_TITLES = {
    channel: "what excites it most",
    negative: "what drives it most negative",
    diversity: "four different ways to excite it",
  };

  var atlas = window.LUCIDWIDGET_ATLAS || { layers: [] };
  /** @type {Object<string, object>} layer name -> manifest */
  var manifests = {};
  /** @type {Object<string, Array<Function>>} layer name -> callbacks waiting for its manifest */
  var waiting = {};
  var page = document.getElementById("page");
  var crumbs = document.getElementById("crumbs");
  var layerFilter = /** @type {HTMLSelectElement} */ (document.getElementById("layer-filter"));
  var channelFilter = /** @type {HTMLInputElement} */ (document.getElementById("channel-filter"));
  var renderToken = 0;

  /**
   * @param {string} tag
   * @param {string} [className]
   * @param {string} [text]
   */
  function h(tag, className, text) {
    var node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function fmt(value) {
    if (typeof value !== "number" || !isFinite(value)) return "–";
    var magnitude = Math.abs(value);
    return magnitude !== 0 && (magnitude >= 1e4 || magnitude < 1e-2) ? value.toExponential(2) : value.toFixed(2);
  }

  /** @param {string} layer @returns {LayerSummary | undefined} */
  function summary(layer) {
    for (var i = 0; i < atlas.layers.length; i++) if (atlas.layers[i].name === layer) return atlas.layers[i];
    return undefined;
  }

  function layerHash(layer) {
    return "#" + encodeURIComponent(layer);
  }

  function unitHash(layer, channel) {
    return layerHash(layer) + "/" + channel;
  }

  /** `#layer`, `#layer/42` (the layer URI-encoded, so names with '/' work) or `#`. */
  function parseHash() {
    var text = window.location.hash.replace(/^#/, "");
    if (!text) return { layer: null, channel: null };
    var slash = text.lastIndexOf("/");
    if (slash > 0 && /^\d+$/.test(text.slice(slash + 1))) {
      return { layer: decode(text.slice(0, slash)), channel: parseInt(text.slice(slash + 1), 10) };
    }
    return { layer: decode(text), channel: null };
  }

  function decode(text) {
    try {
      return decodeURIComponent(text);
    } catch (error) {
      return text;
    }
  }

  /**
   * Channels a filter such as "42" or "0-63,100" allows; null when empty (all), undefined when unreadable.
   * @param {string} text
   */
  function channelSet(text) {
    text = text.replace(/\s+/g, "");
    if (!text) return null;
    if (!/^\d+(-\d+)?(,\d+(-\d+)?)*,?$/.test(text)) return undefined;
    var ranges = text.split(",").filter(Boolean).map(function (part) {
      var ends = part.split("-").map(Number);
      return [ends[0], ends.length > 1 ? ends[1] : ends[0]];
    });
    return function (channel) {
      return ranges.some(function (range) {
        return channel >= range[0] && channel <= range[1];
      });
    };
  }

  /** Loads a layer's manifest once (a script tag), then calls `done(manifest)`; `failed()` if missing. */
  function withManifest(layer, done, failed) {
    if (manifests[layer]) return done(manifests[layer]);
    var info = summary(layer);
    if (!info) return failed();
    if (waiting[layer]) {
      waiting[layer].push(done);
      return undefined;
    }
    waiting[layer] = [done];
    var script = document.createElement("script");
    script.src = encodeURI(info.folder) + "/manifest.js";
    script.onerror = function () {
      delete waiting[layer];
      script.remove();
      failed();
    };
    document.head.appendChild(script);
    return undefined;
  }

  window.lucidwidgetAtlasLayer = function (manifest) {
    manifests[manifest.layer] = manifest;
    var callbacks = waiting[manifest.layer] || [];
    delete waiting[manifest.layer];
    callbacks.forEach(function (callback) {
      callback(manifest);
    });
  };

  function setCrumbs(parts) {
    var nodes = [];
    parts.forEach(function (part, index) {
      if (index) nodes.push(h("span", "sep", "›"));
      var node = part.href ? h("a", "", part.text) : h("span", "here", part.text);
      if (part.href) node.href = part.href;
      nodes.push(node);
    });
    crumbs.replaceChildren.apply(crumbs, nodes);
  }

  function settingsLine() {
    var parts = [atlas.steps + " steps", atlas.size + " px", "seed " + atlas.seed];
    if (atlas.views) parts.push("views: " + atlas.views.join(", "));
    return parts.join(" · ");
  }

  /** Home: one card per layer with a strip of its first units. */
  function showHome() {
    setCrumbs([{ text: "layers" }]);
    layerFilter.value = "";
    var wrap = h("section", "home");
    var intro = h("p", "intro");
    intro.textContent = atlas.layers.length + " layer" + (atlas.layers.length === 1 ? "" : "s") +
      " of " + (atlas.model || "a model") + " · " + settingsLine();
    wrap.appendChild(intro);
    var list = h("div", "layers");
    var allowed = channelSet(channelFilter.value);
    atlas.layers.forEach(function (info) {
      var card = h("a", "layer-card");
      card.href = layerHash(info.name);
      card.dataset.layer = info.name;
      var title = h("div", "layer-title");
      title.appendChild(h("span", "layer-name", info.name));
      var count = info.units + (info.units < info.planned ? " of " + info.planned : "") + " units";
      title.appendChild(h("span", "layer-count", count + (info.examples ? " · dataset examples" : "")));
      card.appendChild(title);
      var strip = h("div", "strip");
      info.preview.forEach(function (image) {
        var img = /** @type {HTMLImageElement} */ (h("img"));
        img.loading = "lazy";
        img.alt = "";
        img.src = encodeURI(info.folder) + "/" + image;
        strip.appendChild(img);
      });
      card.appendChild(strip);
      list.appendChild(card);
    });
    wrap.appendChild(list);
    if (!atlas.layers.length) wrap.appendChild(h("p", "note", "This atlas has no layers yet."));
    if (allowed) wrap.appendChild(h("p", "note", "Pick a layer to see the channels the filter allows."));
    page.replaceChildren(wrap);
    document.title = "Atlas · " + (atlas.model || "");
  }

  /** A layer: a grid of its units, images loaded as they scroll into view. */
  function showLayer(layer) {
    var info = summary(layer);
    setCrumbs([{ text: "layers", href: "#" }, { text: layer }]);
    layerFilter.value = layer;
    if (!info) return showMissing("No layer “" + layer + "” in this atlas.");
    var token = ++renderToken;
    page.replaceChildren(h("p", "note", "Loading " + layer + "…"));
    withManifest(layer, function (manifest) {
      if (token !== renderToken) return;
      var wrap = h("section", "layer");
      var head = h("div", "layer-head");
      head.appendChild(h("h1", "", layer));
      var shown = h("span", "layer-count");
      head.appendChild(shown);
      wrap.appendChild(head);
      var grid = h("div", "grid");
      grid.style.setProperty("--side", GRID_SIDE + "px");
      wrap.appendChild(grid);
      page.replaceChildren(wrap);
      var allowed = channelSet(channelFilter.value);
      var units = manifest.units.filter(function (unit) {
        return !allowed || allowed(unit.channel);
      });
      shown.textContent = units.length + " of " + manifest.planned + " units" +
        (allowed === undefined ? " (the channel filter is not readable: use 42 or 0-63,100)" : "");
      if (!units.length) grid.appendChild(h("p", "note", "No unit matches the channel filter."));
      var folder = encodeURI(manifest.folder);
      var index = 0;
      (function build() {
        if (token !== renderToken) return;
        var fragment = document.createDocumentFragment();
        for (var end = Math.min(index + CELLS_PER_FRAME, units.length); index < end; index++) {
          fragment.appendChild(cell(layer, folder, units[index]));
        }
        grid.appendChild(fragment);
        if (index < units.length) window.requestAnimationFrame(build);
      })();
      document.title = layer + " · Atlas";
    }, function () {
      if (token === renderToken) showMissing("The units of “" + layer + "” could not be loaded.");
    });
    return undefined;
  }

  /** @param {string} layer @param {string} folder @param {Unit} unit */
  function cell(layer, folder, unit) {
    var link = h("a", "cell");
    link.href = unitHash(layer, unit.channel);
    link.dataset.channel = String(unit.channel);
    link.title = layer + ":" + unit.channel + " · " + fmt(unit.objective);
    var img = /** @type {HTMLImageElement} */ (h("img"));
    img.loading = "lazy";
    img.decoding = "async";
    img.width = GRID_SIDE;
    img.height = GRID_SIDE;
    img.alt = layer + ":" + unit.channel;
    img.src = folder + "/" + encodeURI(unit.image);
    link.appendChild(img);
    link.appendChild(h("span", "label", String(unit.channel)));
    return link;
  }

  /** A unit: its views with their values, its seed, and its dataset examples. */
  function showUnit(layer, channel) {
    setCrumbs([{ text: "layers", href: "#" }, { text: layer, href: layerHash(layer) }, { text: String(channel) }]);
    layerFilter.value = layer;
    var token = ++renderToken;
    withManifest(layer, function (manifest) {
      if (token !== renderToken) return;
      var position = -1;
      for (var i = 0; i < manifest.units.length; i++) if (manifest.units[i].channel === channel) position = i;
      if (position < 0) return showMissing("Unit " + channel + " of “" + layer + "” is not in this atlas (yet).");
      var unit = manifest.units[position];
      var folder = encodeURI(manifest.folder) + "/";
      var wrap = h("article", "unit");
      wrap.dataset.layer = layer;
      wrap.dataset.channel = String(channel);

      var head = h("div", "unit-head");
      head.appendChild(h("h1", "", layer + " : " + channel));
      var nav = h("div", "unit-nav");
      var previous = manifest.units[position - 1];
      var next = manifest.units[position + 1];
      nav.appendChild(navLink("‹ " + (previous ? previous.channel : ""), previous && unitHash(layer, previous.channel), "previous"));
      nav.appendChild(navLink((next ? next.channel : "") + " ›", next && unitHash(layer, next.channel), "next"));
      head.appendChild(nav);
      wrap.appendChild(head);

      var facts = h("p", "facts");
      facts.textContent = "mean activation " + fmt(unit.objective) + " · seed " + unit.seed + " · " +
        manifest.steps + " steps at " + manifest.size + " px" + (manifest.preprocess ? " · " + manifest.preprocess : "");
      wrap.appendChild(facts);

      var views = h("div", "views");
      Object.keys(VIEW_TITLES).forEach(function (name) {
        var view = unit.views[name];
        if (!view) return;
        var figure = h("figure", "view view-" + name);
        var img = /** @type {HTMLImageElement} */ (h("img"));
        img.alt = layer + ":" + channel + " " + name;
        img.src = folder + encodeURI(view.image);
        figure.appendChild(img);
        var caption = h("figcaption");
        caption.appendChild(h("strong", "", name));
        caption.appendChild(h("span", "", " " + VIEW_TITLES[name] + " · " + fmt(view.value)));
        figure.appendChild(caption);
        views.appendChild(figure);
      });
      wrap.appendChild(views);

      if (unit.examples) {
        var section = h("section", "examples");
        var total = manifest.examples ? " of " + manifest.examples.images + " images" : "";
        section.appendChild(h("h2", "", "Dataset examples: top " + unit.examples.length + total));
        section.appendChild(h("p", "note", "Each crop is centred where the unit fired most; its value is that maximum."));
        var grid = h("div", "example-grid");
        unit.examples.forEach(function (example, rank) {
          var figure = h("figure", "example");
          var img = /** @type {HTMLImageElement} */ (h("img"));
          img.loading = "lazy";
          img.alt = example.source;
          img.src = folder + encodeURI(example.image);
          figure.appendChild(img);
          var caption = h("figcaption");
          caption.appendChild(h("span", "value", "#" + (rank + 1) + " · " + fmt(example.value)));
          caption.appendChild(h("span", "source", example.source));
          caption.title = example.source;
          figure.appendChild(caption);
          grid.appendChild(figure);
        });
        section.appendChild(grid);
        wrap.appendChild(section);
      }

      var code = h("section", "reproduce");
      code.appendChild(h("h2", "", "Open it live"));
      var model = JSON.stringify(manifest.model);
      var preprocess = manifest.preprocess ? ", preprocess=" + JSON.stringify(manifest.preprocess) : "";
      code.appendChild(h("code", "", "lw.LucidWidget(" + model + ", layer=" + JSON.stringify(layer) + ", channel=" +
        channel + ", seed=" + unit.seed + ", steps=" + manifest.steps + ", size=" + manifest.size + preprocess + ")"));
      wrap.appendChild(code);

      page.replaceChildren(wrap);
      document.title = layer + ":" + channel + " · Atlas";
      window.scrollTo(0, 0);
    }, function () {
      if (token === renderToken) showMissing("The units of “" + layer + "” could not be loaded.");
    });
  }

  function navLink(text, href, rel) {
    var link = h(href ? "a" : "span", "nav-link" + (href ? "" : " disabled"), text);
    if (href) {
      link.href = href;
      link.rel = rel;
    }
    return link;
  }

  function showMissing(message) {
    page.replaceChildren(h("p", "note missing", message));
  }

  function route() {
    var target = parseHash();
    if (target.layer === null) return showHome();
    if (target.channel === null) return showLayer(target.layer);
    return showUnit(target.layer, target.channel);
  }

  function fillLayerFilter() {
    atlas.layers.forEach(function (info) {
      var option = /** @type {HTMLOptionElement} */ (h("option", "", info.name));
      option.value = info.name;
      layerFilter.appendChild(option);
    });
  }

  document.getElementById("model").textContent = atlas.model ? atlas.model : "";
  fillLayerFilter();
  layerFilter.addEventListener("change", function () {
    window.location.hash = layerFilter.value ? layerHash(layerFilter.value) : "";
  });
  channelFilter.addEventListener("input", function () {
    var target = parseHash();
    if (target.layer !== null && target.channel === null) showLayer(target.layer);
  });
  channelFilter.addEventListener("keydown", function (event) {
    var target = parseHash();
    if (event.key === "Enter" && target.layer !== null && /^\d+$/.test(channelFilter.value.trim())) {
      window.location.hash = unitHash(target.layer, parseInt(channelFilter.value.trim(), 10));
    }
  });
  document.addEventListener("keydown", function (event) {
    if (event.target instanceof HTMLInputElement || event.target instanceof HTMLSelectElement) return;
    var rel = { ArrowLeft: "previous", ArrowRight: "next" }[event.key];
    var link = rel && document.querySelector(".unit-nav a[rel=" + rel + "]");
    if (link) window.location.hash = link.getAttribute("href");
    var target = parseHash();
    if (event.key === "Escape" && target.channel !== null) window.location.hash = layerHash(target.layer);
  });
  window.addEventListener("hashchange", route);
  route();
})();
