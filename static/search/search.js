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

  function showPreview(file) {
    if (preview.src) URL.revokeObjectURL(preview.src);
    preview.src = URL.createObjectURL(file);
    preview.hidden = false;
    zone.classList.add("has-preview");
  }

  function searchWith(file) {
    if (!file || !/^image\//.test(file.type || "image/")) return;
    var files = new DataTransfer();
    files.items.add(file);
    fileInput.files = files.files;
    urlInput.value = "";
    showPreview(file);
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
