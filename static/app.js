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
  // while the owner may be typing elsewhere: they never move focus. Their
  // swaps come from no request (no xhr in the event).
  // A region fetched again because of the stream (reconnected, or told its
  // integration's connection changed) is a live swap too.
  function liveRequest(detail) {
    var cfg = detail && detail.requestConfig;
    var type = cfg && cfg.triggeringEvent && cfg.triggeringEvent.type;
    return !!type && (type === "ava:live-resumed" || type.indexOf("sse:") === 0);
  }

  // A field the owner has typed into and not saved.
  function dirty(root) {
    var fields = root.querySelectorAll ? root.querySelectorAll("input, textarea, select") : [];
    for (var i = 0; i < fields.length; i++) {
      var f = fields[i];
      if (f.type === "hidden") continue;
      if (f.tagName === "SELECT") {
        for (var j = 0; j < f.options.length; j++) {
          if (f.options[j].selected !== f.options[j].defaultSelected) return true;
        }
      } else if (f.type === "checkbox" || f.type === "radio") {
        if (f.checked !== f.defaultChecked) return true;
      } else if (f.value !== f.defaultValue) {
        return true;
      }
    }
    return false;
  }

  // What arrives live never replaces what the owner is typing: a setting's
  // row then takes only its current value (the field keeps the typing), a
  // card or region is left for the next look.
  document.addEventListener("htmx:sseBeforeMessage", function (e) {
    var target = e.target;
    if (!target || !dirty(target)) return;
    e.preventDefault();
    if (!target.classList.contains("setting-row")) return;
    var tpl = document.createElement("template");
    tpl.innerHTML = e.detail.data;
    var fresh = tpl.content.querySelector(".setting-current");
    var current = target.querySelector(".setting-current");
    if (fresh && current) current.replaceWith(fresh);
  });
  document.addEventListener("htmx:beforeSwap", function (e) {
    if (!liveRequest(e.detail) || !e.detail.target) return;
    if (dirty(e.detail.target)) {
      e.detail.shouldSwap = false;
      return;
    }
    if (e.detail.shouldSwap) remember(e.detail.target);
  });
  document.addEventListener("htmx:sseBeforeMessage", function (e) {
    if (!e.defaultPrevented && e.target) remember(e.target);
  });

  // A live swap never moves focus, and it must not drop it either: when
  // the focus was inside what a live swap replaces (an alert the owner was
  // reading, a button about to be pressed), it goes to the same thing in
  // what replaced it: the element of the same id, else the alert, else the
  // control of the same kind and text.
  // htmx swaps at once after its before-events (no swap delay here), so
  // what remember holds is for that swap only: a swap that does not come
  // (a 204, nothing to swap) leaves nothing behind for a later one.
  var held = null;
  function remember(target) {
    var active = document.activeElement;
    held = null;
    if (!active || active === document.body || !target.contains(active)) return;
    window.setTimeout(function () { held = null; }, 0);
    var text = (active.textContent || "").trim();
    held = {
      id: target.id,
      focus: active.id,
      alert: active.getAttribute("role") === "alert",
      tag: active.tagName,
      text: text,
      nth: alike(target, active.tagName, text).indexOf(active),
    };
  }
  // The elements of root with this tag and text, in document order.
  function alike(root, tag, text) {
    return Array.prototype.filter.call(root.querySelectorAll(tag), function (el) {
      return (el.textContent || "").trim() === text;
    });
  }
  function successor(root, h) {
    if (h.focus) return document.getElementById(h.focus);
    if (h.alert) return root.querySelector('[role="alert"]');
    return alike(root, h.tag, h.text)[h.nth] || null;
  }
  function restore(target) {
    var h = held;
    held = null;
    if (!h || (document.activeElement && document.activeElement !== document.body)) return;
    var root = swapped(target, h.id);
    var next = root && successor(root, h);
    if (next && root.contains(next)) next.focus({ preventScroll: true });
  }

  // What a swap left in the page for its target: the target itself, or,
  // when an outerHTML swap replaced it, its successor of the same id.
  function swapped(target, id) {
    if (target && document.contains(target)) return target;
    return id ? document.getElementById(id) : null;
  }

  // An alert a request of the owner's brought takes the focus, so that it
  // is read out; a live swap keeps the focus where it was (above).
  document.addEventListener("htmx:afterSwap", function (e) {
    var target = e.detail.target;
    if (!e.detail.xhr || liveRequest(e.detail)) {
      restore(target);
      return;
    }
    if (!target || !target.querySelector) return;
    target = swapped(target, target.id);
    if (!target) return;
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
  // #live-status says the stream's state in data-live: open, paused or
  // closed.
  var streamLost = false;
  function live(state) {
    var status = document.getElementById("live-status");
    if (!status) return;
    status.setAttribute("data-live", state);
    var p = status.querySelector(".live-paused");
    if (p) p.hidden = state !== "paused";
  }
  document.addEventListener("htmx:sseError", function () {
    streamLost = true;
    live("paused");
  });
  document.addEventListener("htmx:sseOpen", function () {
    live("open");
    if (streamLost) {
      streamLost = false;
      window.htmx.trigger(document.body, "ava:live-resumed");
    }
  });
  document.addEventListener("htmx:sseClose", function () { live("closed"); });
  // Leaving the page ends its stream: that is no error to show.
  window.addEventListener("pagehide", function () { streamLost = false; live("closed"); });

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
