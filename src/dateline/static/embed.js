// Dateline embed loader: publishers paste
//   <div data-dateline-embed="https://live.example.org/stories/SLUG"><a href="…">…</a></div>
//   <script async src="https://live.example.org/embed.js"></script>
// and each such element becomes a frame of the live story (data-dateline-view="teaser" for
// the compact one), sized to its content as updates arrive. The element's CSS custom
// properties --dateline-font, --dateline-accent and --dateline-scheme (light, dark, auto)
// style it. No dependencies; it sets no cookie and reads none.
(function () {
  "use strict";
  var frames = [];
  var HEIGHTS = { embed: 800, teaser: 420 }; // until the frame says how tall it is

  function styleOf(el) {
    var computed = getComputedStyle(el);
    function read(name) { return computed.getPropertyValue(name).trim(); }
    return { dateline: "style", font: read("--dateline-font"), accent: read("--dateline-accent"),
             scheme: read("--dateline-scheme") || "auto" };
  }

  function mount(el) {
    if (el.getAttribute("data-dateline-mounted")) return;
    var url;
    try { url = new URL(el.getAttribute("data-dateline-embed"), location.href); } catch (e) { return; }
    var story = url.pathname.match(/^\/stories\/([a-z0-9]+(?:-[a-z0-9]+)*)\/?$/);
    if (!story || (url.protocol !== "https:" && url.protocol !== "http:")) return;
    el.setAttribute("data-dateline-mounted", "yes");
    var view = el.getAttribute("data-dateline-view") === "teaser" ? "teaser" : "embed";
    var scheme = styleOf(el).scheme;
    var frame = document.createElement("iframe");
    frame.src = url.origin + "/stories/" + story[1] + "/" + view +
      (scheme === "light" || scheme === "dark" ? "?scheme=" + scheme : "");
    frame.title = (el.textContent || "").trim() || "Live coverage";
    frame.loading = "lazy";
    // Its own origin, its scripts, and links that open in this window or a new one.
    frame.setAttribute("sandbox", "allow-scripts allow-same-origin allow-popups " +
      "allow-popups-to-escape-sandbox allow-top-navigation-by-user-activation");
    frame.style.cssText = "display:block;width:100%;border:0;height:" + HEIGHTS[view] + "px";
    el.replaceChildren(frame);
    frames.push({ frame: frame, el: el, origin: url.origin });
  }

  window.addEventListener("message", function (event) {
    var data = event.data;
    if (!data || typeof data.dateline !== "string") return;
    for (var i = 0; i < frames.length; i++) {
      var found = frames[i];
      if (event.source !== found.frame.contentWindow || event.origin !== found.origin) continue;
      if (data.dateline === "height" && typeof data.height === "number" && data.height > 0 && data.height < 100000) {
        found.frame.style.height = Math.ceil(data.height) + "px";
      } else if (data.dateline === "ready") {
        found.frame.contentWindow.postMessage(styleOf(found.el), found.origin);
      }
    }
  });

  function mountAll() {
    var found = document.querySelectorAll("[data-dateline-embed]");
    for (var i = 0; i < found.length; i++) mount(found[i]);
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", mountAll);
  else mountAll();
})();
