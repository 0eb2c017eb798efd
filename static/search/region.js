// The region tool: on the answer's query picture, draw a box (mouse, pen or touch), move it, resize it by
// its corner or with the keyboard, and search only that part. The box's position lives in CSS custom
// properties set here through the CSSOM: the page's CSP refuses inline style attributes, not this.
(function () {
  "use strict";

  var form = document.getElementById("region-form");
  var frame = document.getElementById("query-frame");
  var picture = document.getElementById("query-img");
  if (!form || !frame || !picture) return;
  var boxInput = document.getElementById("region-box");
  var status = document.getElementById("region-status");
  var STEP = 0.02; // what one arrow key press moves or resizes, as a fraction of the picture
  var MIN = 0.04; // the smallest box drawn, so a click is not taken for a box
  var WHOLE = { l: 0, t: 0, r: 1, b: 1 };

  var box = parseBox(form.dataset.box) || copy(WHOLE);
  var region = document.createElement("div");
  var handle = document.createElement("span");
  region.className = "region";
  region.id = "region";
  region.tabIndex = 0;
  region.setAttribute("role", "group");
  region.setAttribute("aria-roledescription", "selection box");
  region.setAttribute("aria-label", "Part of the picture to search");
  region.setAttribute("aria-describedby", "region-help region-status");
  handle.className = "region-handle";
  region.appendChild(handle);
  frame.appendChild(region);
  frame.classList.add("is-selecting");
  form.hidden = false;

  function parseBox(text) {
    var edges = (text || "").split(",").map(Number);
    if (edges.length !== 4 || edges.some(isNaN)) return null;
    return { l: edges[0], t: edges[1], r: edges[2], b: edges[3] };
  }

  function copy(b) {
    return { l: b.l, t: b.t, r: b.r, b: b.b };
  }

  function clamp(value, low, high) {
    return Math.min(high, Math.max(low, value));
  }

  function percent(fraction) {
    return Math.round(fraction * 100);
  }

  function isWhole() {
    return box.l <= 0 && box.t <= 0 && box.r >= 1 && box.b >= 1;
  }

  function show() {
    region.style.setProperty("--left", box.l * 100 + "%");
    region.style.setProperty("--top", box.t * 100 + "%");
    region.style.setProperty("--width", (box.r - box.l) * 100 + "%");
    region.style.setProperty("--height", (box.b - box.t) * 100 + "%");
    // The whole picture is searched without a box: the address stays the plain one.
    boxInput.disabled = isWhole();
    boxInput.value = [box.l, box.t, box.r, box.b].map(function (edge) { return +edge.toFixed(4); }).join(",");
    status.textContent = isWhole()
      ? "The whole picture is selected."
      : "Selected: from " + percent(box.l) + "% to " + percent(box.r) + "% across, " +
        percent(box.t) + "% to " + percent(box.b) + "% down.";
  }

  // --- mouse, pen and touch -------------------------------------------------------------------------
  var drag = null;

  function pointAt(event) {
    var rect = picture.getBoundingClientRect();
    return {
      x: clamp((event.clientX - rect.left) / rect.width, 0, 1),
      y: clamp((event.clientY - rect.top) / rect.height, 0, 1),
    };
  }

  function dragged(point) {
    var from = drag.from;
    if (drag.mode === "move") {
      var width = from.r - from.l, height = from.b - from.t;
      var left = clamp(from.l + point.x - drag.start.x, 0, 1 - width);
      var top = clamp(from.t + point.y - drag.start.y, 0, 1 - height);
      return { l: left, t: top, r: left + width, b: top + height };
    }
    if (drag.mode === "resize") {
      return { l: from.l, t: from.t, r: clamp(point.x, from.l + MIN, 1), b: clamp(point.y, from.t + MIN, 1) };
    }
    return {
      l: Math.min(point.x, drag.start.x),
      t: Math.min(point.y, drag.start.y),
      r: Math.max(point.x, drag.start.x),
      b: Math.max(point.y, drag.start.y),
    };
  }

  frame.addEventListener("pointerdown", function (event) {
    if (event.pointerType === "mouse" && event.button !== 0) return;
    // A whole-picture box cannot move: pressing on it starts a new one.
    var moves = event.target === region && !isWhole();
    var mode = event.target === handle ? "resize" : moves ? "move" : "draw";
    drag = { mode: mode, start: pointAt(event), from: copy(box), pointer: event.pointerId };
    frame.setPointerCapture(event.pointerId);
    region.focus({ preventScroll: true });
    event.preventDefault();
  });

  frame.addEventListener("pointermove", function (event) {
    if (!drag || event.pointerId !== drag.pointer) return;
    box = dragged(pointAt(event));
    show();
  });

  function finish(event) {
    if (!drag || event.pointerId !== drag.pointer) return;
    if (drag.mode === "draw" && (box.r - box.l < MIN || box.b - box.t < MIN)) box = drag.from;
    drag = null;
    show();
  }
  frame.addEventListener("pointerup", finish);
  frame.addEventListener("pointercancel", finish);

  // --- keyboard ------------------------------------------------------------------------------------
  var ARROWS = { ArrowLeft: [-1, 0], ArrowRight: [1, 0], ArrowUp: [0, -1], ArrowDown: [0, 1] };

  region.addEventListener("keydown", function (event) {
    if (event.key === "Enter") {
      event.preventDefault();
      form.requestSubmit();
      return;
    }
    var arrow = ARROWS[event.key];
    if (!arrow) return;
    event.preventDefault();
    var dx = arrow[0] * STEP, dy = arrow[1] * STEP;
    if (event.shiftKey) {
      box.r = clamp(box.r + dx, box.l + MIN, 1);
      box.b = clamp(box.b + dy, box.t + MIN, 1);
    } else {
      var width = box.r - box.l, height = box.b - box.t;
      box.l = clamp(box.l + dx, 0, 1 - width);
      box.t = clamp(box.t + dy, 0, 1 - height);
      box.r = box.l + width;
      box.b = box.t + height;
    }
    show();
  });

  document.getElementById("region-reset").addEventListener("click", function () {
    box = copy(WHOLE);
    show();
    region.focus();
  });

  show();
})();
