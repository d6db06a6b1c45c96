// Ava console: the little JavaScript the pages need. It lives here, not
// inline, because the Content-Security-Policy allows no inline scripts.
(function () {
  "use strict";

  var TOAST_MS = 6000;

  // htmx runs (this script comes after it): regions load live, so their
  // fallback links (to the same content without script) are hidden. When
  // htmx did not load, they stay.
  if (window.htmx) document.documentElement.classList.add("htmx-on");

  // Live updates (GET /events, htmx's SSE extension on <body>) swap regions
  // while the owner may be typing elsewhere: they never move focus.
  // (The swap follows htmx:sseBeforeMessage at once; htmx:sseMessage would
  // not reach the document after an outerHTML swap, so the flag clears on
  // the next task.)
  var liveSwap = false;
  document.addEventListener("htmx:sseBeforeMessage", function () {
    liveSwap = true;
    window.setTimeout(function () { liveSwap = false; }, 0);
  });

  // Move focus to an error alert swapped into the page, so keyboard and
  // screen-reader users land on it.
  document.addEventListener("htmx:afterSwap", function (e) {
    if (liveSwap) return;
    var target = e.detail.target;
    if (!target || !target.querySelector) return;
    // An outerHTML swap replaces the target: look for its successor by id.
    if (!document.contains(target) && target.id) {
      target = document.getElementById(target.id);
      if (!target) return;
    }
    var alert = target.querySelector('[role="alert"]');
    if (alert) alert.focus();
  });

  // The server could not be reached at all (network error, timeout): show
  // the connection-error alert in the region, with a retry of a GET.
  function connectionError(e) {
    var target = e.detail.target;
    var tpl = document.getElementById("connection-error-template");
    if (!target || !tpl) return;
    var node = tpl.content.firstElementChild.cloneNode(true);
    var cfg = e.detail.requestConfig || {};
    var button = node.querySelector("button");
    if (button) {
      if (cfg.verb === "get" && cfg.path) {
        button.setAttribute("hx-get", cfg.path);
      } else {
        button.remove();
        var msg = node.querySelector(".alert-message");
        if (msg) msg.textContent = "Nothing was saved. Check your connection, then submit again.";
      }
    }
    target.replaceChildren(node);
    if (window.htmx) window.htmx.process(node);
    node.focus();
  }
  document.addEventListener("htmx:sendError", connectionError);
  document.addEventListener("htmx:timeout", connectionError);

  // A connect form whose fields depend on a choice (Email: Resend or SMTP)
  // shows only the chosen provider's fields. Without this script every
  // group shows, and the server ignores the groups not chosen.
  function showChosenGroups(root) {
    root.querySelectorAll("select[data-selector-field]").forEach(function (select) {
      var form = select.form;
      if (!form) return;
      form.querySelectorAll("fieldset[data-when]").forEach(function (group) {
        var off = group.getAttribute("data-selector") === select.name && group.getAttribute("data-when") !== select.value;
        group.hidden = off;
        group.disabled = off;
      });
    });
  }
  document.addEventListener("change", function (e) {
    if (e.target.matches && e.target.matches("select[data-selector-field]")) showChosenGroups(e.target.form || document);
  });
  document.addEventListener("htmx:afterSwap", function () { showChosenGroups(document); });
  document.addEventListener("DOMContentLoaded", function () { showChosenGroups(document); });

  // A stream that drops says so ("Live updates paused, reconnecting"); the
  // browser reconnects by itself, and then the live regions fetch
  // themselves again (hx-trigger "ava:live-resumed from:body"), so nothing
  // missed meanwhile stays stale. A stream the server ended with
  // "signed-out" is closed for good, and the notice says so instead.
  var streamLost = false;
  function paused(show) {
    var p = document.querySelector("#live-status .live-paused");
    if (p) p.hidden = !show;
  }
  document.addEventListener("htmx:sseError", function () {
    streamLost = true;
    paused(true);
  });
  document.addEventListener("htmx:sseOpen", function () {
    paused(false);
    if (streamLost) {
      streamLost = false;
      window.htmx.trigger(document.body, "ava:live-resumed");
    }
  });
  document.addEventListener("htmx:sseClose", function () { paused(false); });
  // Leaving the page ends its stream: that is no error to show.
  window.addEventListener("pagehide", function () { streamLost = false; paused(false); });

  // Toasts leave on their own after a while; the live region has announced
  // them by then.
  function expire(toast) {
    window.setTimeout(function () {
      toast.classList.add("toast-leaving");
      window.setTimeout(function () { toast.remove(); }, 300);
    }, TOAST_MS);
  }
  document.addEventListener("DOMContentLoaded", function () {
    var region = document.getElementById("toasts");
    if (!region) return;
    new MutationObserver(function (records) {
      records.forEach(function (r) {
        r.addedNodes.forEach(function (n) {
          if (n.nodeType === 1 && n.classList.contains("toast")) expire(n);
        });
      });
    }).observe(region, { childList: true });
    // A toast a redirect left for this page (the end of a connect).
    var pending = document.getElementById("pending-toast");
    if (pending) {
      region.appendChild(pending.content.cloneNode(true));
      pending.remove();
    }
  });
})();
