// Dateline's framed views (/stories/{slug}/embed and /teaser), inside a publisher's page:
// reports the height of the content to the loader (embed.js) so the frame fits it, opens
// links in the publisher's window, and takes the publisher's font, accent and scheme.
(function () {
  "use strict";
  if (window.parent === window) return; // opened on its own: nothing to fit

  var root = document.documentElement;
  var main = document.querySelector("main");
  var reported = 0;

  function report() {
    var height = Math.ceil(main.getBoundingClientRect().bottom + window.scrollY + 16);
    if (height !== reported) {
      reported = height;
      window.parent.postMessage({ dateline: "height", height: height }, "*"); // a height is no secret
    }
  }

  // Links leave the frame: the reader goes to the story (or the source) in the top window.
  document.addEventListener("click", function (event) {
    var link = event.target.closest("a[href]");
    if (link && link.getAttribute("href").charAt(0) !== "#") link.target = "_top";
  }, true);

  window.addEventListener("message", function (event) {
    var style = event.data;
    if (event.source !== window.parent || !style || style.dateline !== "style") return;
    if (typeof style.accent === "string" && style.accent && CSS.supports("color", style.accent)) {
      root.style.setProperty("--accent", style.accent);
      root.style.setProperty("--link", style.accent);
    }
    if (typeof style.font === "string" && style.font && CSS.supports("font-family", style.font)) {
      document.body.style.fontFamily = style.font;
    }
    if (style.scheme === "light" || style.scheme === "dark" || style.scheme === "auto") {
      root.classList.remove("scheme-light", "scheme-dark");
      if (style.scheme !== "auto") root.classList.add("scheme-" + style.scheme);
    }
    report();
  });

  if ("ResizeObserver" in window) new ResizeObserver(report).observe(main);
  window.addEventListener("load", report);
  report();
  window.parent.postMessage({ dateline: "ready" }, "*");
})();
