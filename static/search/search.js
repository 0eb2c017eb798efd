// The search page works as a plain form; this adds drag and drop, paste, a preview and a busy state.
(function () {
  "use strict";

  var form = document.getElementById("search-form");
  if (!form) return;
  var zone = document.getElementById("drop-zone");
  var fileInput = document.getElementById("image-input");
  var urlInput = document.getElementById("url-input");
  var button = document.getElementById("search-button");
  var preview = document.getElementById("drop-preview");
  var status = document.getElementById("drop-status");
  // The stylesheet hides the native file control only when this script runs to say what was chosen.
  document.documentElement.classList.add("js");

  // The types whose formats catalog/imagefile.py reads (ALLOWED_FORMATS). A file the browser types as
  // anything else is refused here; one it cannot type is sent, and the server says what it is.
  var SEARCHABLE_TYPES = ["image/jpeg", "image/png", "image/webp", "image/gif", "image/avif", "image/bmp", "image/tiff"];

  function sizeText(bytes) {
    return bytes >= 1e6 ? (bytes / 1e6).toFixed(1) + " MB" : Math.max(1, Math.round(bytes / 1e3)) + " kB";
  }

  function say(text, refused) {
    status.textContent = text;
    status.classList.toggle("is-refused", refused);
  }

  function refusal(file) {
    if (!file.type || SEARCHABLE_TYPES.indexOf(file.type) !== -1) return "";
    var what = /^image\//.test(file.type) ? "is a kind of picture revimg cannot read" : "is not a picture";
    return file.name + " " + what + ": choose a JPEG, PNG, WebP, GIF, BMP or TIFF.";
  }

  function showPreview(file) {
    if (preview.src) URL.revokeObjectURL(preview.src);
    preview.src = URL.createObjectURL(file);
    preview.hidden = false;
    zone.classList.add("has-preview");
  }

  function hidePreview() {
    preview.hidden = true;
    zone.classList.remove("has-preview");
  }

  function searchWith(file) {
    if (!file) return;
    var refused = refusal(file);
    if (refused) {
      fileInput.value = "";  // so that Search cannot send it either
      hidePreview();
      say(refused, true);
      return;
    }
    var files = new DataTransfer();
    files.items.add(file);
    fileInput.files = files.files;
    urlInput.value = "";
    showPreview(file);
    say(file.name + " (" + sizeText(file.size) + "): searching…", false);
    form.requestSubmit();
  }

  fileInput.addEventListener("change", function () {
    if (fileInput.files.length) searchWith(fileInput.files[0]);
  });

  ["dragenter", "dragover"].forEach(function (name) {
    zone.addEventListener(name, function (event) {
      event.preventDefault();
      zone.classList.add("is-dragging");
    });
  });
  ["dragleave", "drop"].forEach(function (name) {
    zone.addEventListener(name, function () {
      zone.classList.remove("is-dragging");
    });
  });
  zone.addEventListener("drop", function (event) {
    event.preventDefault();
    var dropped = event.dataTransfer;
    if (dropped.files.length) {
      searchWith(dropped.files[0]);
    } else if (dropped.getData("text/uri-list")) {
      // A picture dragged from another web page arrives as its address.
      urlInput.value = dropped.getData("text/uri-list").split("\n")[0].trim();
      form.requestSubmit();
    }
  });

  document.addEventListener("paste", function (event) {
    var items = (event.clipboardData && event.clipboardData.items) || [];
    for (var i = 0; i < items.length; i++) {
      if (items[i].kind === "file" && items[i].type.indexOf("image/") === 0) {
        event.preventDefault();
        searchWith(items[i].getAsFile());
        return;
      }
    }
  });

  urlInput.addEventListener("input", function () {
    // One query at a time: typing an address replaces a chosen file.
    if (urlInput.value && fileInput.files.length) fileInput.value = "";
  });

  form.addEventListener("submit", function (event) {
    if (!fileInput.files.length && !urlInput.value.trim()) {
      event.preventDefault();
      urlInput.setCustomValidity("Choose a picture, or give the address of one.");
      urlInput.reportValidity();
      urlInput.setCustomValidity("");
      return;
    }
    form.classList.add("is-searching");
    button.disabled = true;
    button.textContent = "Searching";
    if (!fileInput.files.length) {
      // An address alone is searched at its own GET address, which can be shared and reloaded.
      event.preventDefault();
      window.location.assign(form.action.split("?")[0] + "?url=" + encodeURIComponent(urlInput.value.trim()));
    }
  });

  // Coming back with the browser's Back button must not leave the form looking busy.
  window.addEventListener("pageshow", function () {
    form.classList.remove("is-searching");
    button.disabled = false;
    button.textContent = "Search";
  });
})();
