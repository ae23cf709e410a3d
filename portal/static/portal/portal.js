/* CloudPilot reference captive portal: choose a package, pay by M-Pesa, or type a code, and go online.
 *
 * Talks only to this server: GraphQL over HTTP (X-Public-Key), live status over the
 * graphql-transport-ws WebSocket protocol, falling back to polling `payment` when WebSockets fail.
 * The hotspot's login.html hands over routerId, mac, ip, link-login-only, link-orig and error in the
 * query string (and a voucher's QR code a #code= fragment); once an access code is active it is posted
 * to the login URL the server rendered into the page (data-login-url): the router's registered hotspot
 * address, never a host from this page's URL. Every word shown comes from i18n.js (English, Swahili);
 * operators' texts (business name, message, phone) are set as text, never as HTML.
 */
(function () {
  "use strict";

  var root = document.getElementById("portal");
  var params = new URLSearchParams(location.search);
  var KEY = root.dataset.publicKey;
  var GRAPHQL_URL = root.dataset.graphqlUrl || "/graphql/";
  var WS_URL = (location.protocol === "https:" ? "wss://" : "ws://") + location.host + GRAPHQL_URL;
  var ROUTER_ID = params.get("routerId") || params.get("router") || root.dataset.routerId || "";
  var MAC = clean(params.get("mac"));
  var IP = clean(params.get("ip"));
  // Checked by the server against the router's hotspotAddress (portal.views.login_url): a crafted
  // link-login-only must not collect access codes. Empty: the customer types the code on the hotspot.
  var LOGIN_URL = root.dataset.loginUrl || null;
  var ORIGINAL_URL = clean(params.get("link-orig") || params.get("dst"));
  var POLL_MS = 3000;
  var NUDGE_MS = 15000; // ask IntaSend directly this often while waiting (a lost webhook)
  var BUSY_RETRY_MS = 90 * 1000; // how long a code refused with RATE_LIMITED is asked again
  var BUSY_RETRY_EVERY_MS = 4000;
  var LOGIN_DELAY_MS = 3000; // show the code for a moment before the router's login page takes over
  var SLOW_MS = 8000; // a grant still PENDING after this long: say so and show the code
  var GRANT_POLL_MS = 1500; // a voucher's grant is usually on the router within a second or two
  var GRANT_POLL_FOR_MS = 10 * 60 * 1000;
  var PAYMENT_KEPT_MS = 30 * 60 * 1000;
  // localStorage outlives the tab (a second tab, a reload); captive browsers may lose it when closed,
  // which is why the code box is the main way back.
  var STORE = "cloudpilot.payment." + KEY;
  var CODE_STORE = "cloudpilot.code." + KEY + "." + ROUTER_ID;
  // The language switch's choice, shared with the server's customer pages (project.i18n).
  var LANG_COOKIE = "cloudpilot_lang";
  var CATALOGUE = window.PORTAL_I18N;

  var GRANT_FIELDS = "status accessCode lastError expiresAt";
  var PAYMENT_FIELDS =
    "fragment P on Payment { id status failureReason paymentUrl amount currency " +
    "package { name durationMinutes } activation { status accessCode lastError expiresAt } }";
  var Q_INFO = "query($r: ID) { portalInfo(routerId: $r) { businessName supportPhone portalMessage language timeZone router { id name } } }";
  var Q_PACKAGES =
    "query($r: ID!) { packages(routerId: $r) { id name price durationMinutes uploadKbps downloadKbps dataLimitMb sharedUsers } }";
  // $s is the payment's clientSecret: only the page that started the payment holds it.
  var Q_PAYMENT = "query($id: UUID!, $s: String) { payment(id: $id, clientSecret: $s) { ...P } } " + PAYMENT_FIELDS;
  var M_CHECK = "mutation($id: UUID!, $s: String) { checkPaymentStatus(paymentId: $id, clientSecret: $s) { payment { ...P } errors { code message } } } " + PAYMENT_FIELDS;
  var S_UPDATES = "subscription($id: UUID!, $s: String) { paymentUpdates(paymentId: $id, clientSecret: $s) { ...P } } " + PAYMENT_FIELDS;
  var PAY_FIELDS = "{ payment { ...P clientSecret } errors { field code message } }";
  var M_INITIATE = "mutation($input: PaymentInput!) { initiatePayment(input: $input) " + PAY_FIELDS + " } " + PAYMENT_FIELDS;
  var M_LINK = "mutation($input: PaymentInput!) { createPaymentLink(input: $input) " + PAY_FIELDS + " } " + PAYMENT_FIELDS;
  var M_REDEEM = "mutation($input: RedeemCodeInput!) { redeemCode(input: $input) { kind activation { " + GRANT_FIELDS + " } errors { field code message } } }";
  var Q_ACCESS = "query($r: ID!, $c: String!) { accessStatus(routerId: $r, code: $c) { status expiresAt devicesAllowed errors { code message } } }";

  var $ = function (id) { return document.getElementById(id); };
  var info = { businessName: "", supportPhone: "", portalMessage: "", timeZone: "Africa/Nairobi" };
  var lang = root.dataset.language || "EN"; // what the server rendered: the customer's choice, else the operator's
  var packages = null;
  var attemptKey = null; // idempotency key of the current attempt, kept while retrying a lost request
  var watcher = null;
  var grantTimer = null;
  var loggedIn = false;
  var live = []; // elements whose text follows the language

  function clean(value) {
    value = (value || "").trim();
    return value && value !== "---" && value.indexOf("$(") !== 0 ? value : null;
  }

  function chosenLanguage() {
    var match = /(?:^|;\s*)cloudpilot_lang=(en|sw)(?:;|$)/.exec(document.cookie);
    return match ? match[1].toUpperCase() : null;
  }

  function stored(name) { try { return localStorage.getItem(name); } catch (e) { return null; } }
  function store(name, value) {
    try { if (value === null) localStorage.removeItem(name); else localStorage.setItem(name, value); } catch (e) { /* private mode */ }
  }

  // 128 random bits as 32 hex characters: the server refuses shorter keys from portals, since
  // replaying a key returns the payment with its clientSecret.
  function newKey() {
    var bytes = new Uint8Array(16);
    (window.crypto || window.msCrypto).getRandomValues(bytes);
    return Array.prototype.map.call(bytes, function (b) { return ("0" + b.toString(16)).slice(-2); }).join("");
  }

  // -- words -------------------------------------------------------------------------------------

  function t(key, vars) {
    var text = (CATALOGUE[lang] || {})[key] || CATALOGUE.EN[key] || "";
    return text.replace(/\{(\w+)\}/g, function (_, name) {
      var value = vars && vars[name];
      return typeof value === "function" ? value() : value == null ? "" : String(value);
    });
  }

  // Sets an element's text now and again whenever the customer switches language.
  function say(el, render) {
    el._render = render;
    if (live.indexOf(el) < 0) live.push(el);
    render(el);
  }

  function tr(el, key, vars) { say(el, function () { el.textContent = t(key, vars); }); }

  function setLanguage(code) {
    lang = CATALOGUE[code] ? code : "EN";
    document.documentElement.lang = lang.toLowerCase();
    document.title = info.businessName ? info.businessName + " · " + t("title") : t("wifi") + " · " + t("title");
    ["EN", "SW"].forEach(function (c) { $("lang-" + c).setAttribute("aria-pressed", String(c === lang)); });
    live.forEach(function (el) { el._render(el); });
    if (packages) renderPackages();
  }

  function money(amount) {
    var n = Number(amount);
    return "KES " + (n % 1 === 0 ? n.toFixed(0) : n.toFixed(2));
  }

  function duration(minutes) {
    if (minutes % 1440 === 0) return minutes === 1440 ? t("day") : t("days", { n: minutes / 1440 });
    if (minutes % 60 === 0) return minutes === 60 ? t("hour") : t("hours", { n: minutes / 60 });
    return t("minutes", { n: minutes });
  }

  function speed(kbps) { return kbps >= 1000 ? +(kbps / 1024).toFixed(1) + " Mbps" : kbps + " kbps"; }

  // "Mon 30 Nov, 18:05" in the operator's time zone (a bad zone name falls back to the device's).
  function when(iso) {
    var options = { weekday: "short", day: "numeric", month: "short", hour: "2-digit", minute: "2-digit", hourCycle: "h23" };
    var locale = lang === "SW" ? "sw-KE" : "en-GB";
    try {
      return new Intl.DateTimeFormat(locale, Object.assign({ timeZone: info.timeZone }, options)).format(new Date(iso));
    } catch (e) {
      return new Intl.DateTimeFormat(locale, options).format(new Date(iso));
    }
  }

  // 254712345678 → 0712 345 678 (how Kenyans write and dial it)
  function localPhone(msisdn) {
    var local = "0" + msisdn.slice(3);
    return local.slice(0, 4) + " " + local.slice(4, 7) + " " + local.slice(7);
  }

  function maskPhone(phone) {
    var digits = phone.replace(/\D/g, "");
    return digits.length < 7 ? "***" : digits.slice(0, 4) + "***" + digits.slice(-3);
  }

  // -- what the customer sees --------------------------------------------------------------------

  function show(step) {
    ["step-home", "step-order", "step-wait", "step-done", "step-failed"].forEach(function (id) { $(id).hidden = id !== step; });
  }

  function setStatus(key, vars) { tr($("status"), key, vars); }

  // An error in its box, ending with how to reach the operator when they gave a support line.
  function fillError(box, code, vars, fallback) {
    box.dataset.code = code || "";
    box.hidden = false;
    say(box, function () {
      box.textContent = code && t(code, vars) ? t(code, vars) : fallback || t("INTERNAL");
      addHelp(box);
    });
  }

  // "Call <business> on <phone>." after a message, the phone a tel: link.
  function addHelp(el) {
    if (!info.supportPhone) return;
    var parts = t("call", { business: info.businessName || t("the_hotspot"), phone: "{phone}" }).split("{phone}");
    var link = document.createElement("a");
    link.href = "tel:+" + info.supportPhone;
    link.textContent = localPhone(info.supportPhone);
    el.appendChild(document.createTextNode(" " + parts[0]));
    el.appendChild(link);
    el.appendChild(document.createTextNode(parts[1] || ""));
  }

  function showError(code, fallback, vars) { fillError($("error"), code, vars, fallback); }

  function clearError() {
    ["error", "code-error"].forEach(function (id) {
      var box = $(id);
      box.hidden = true;
      box.textContent = "";
      if (live.indexOf(box) >= 0) live.splice(live.indexOf(box), 1);
    });
  }

  function showHeader() {
    if (info.businessName) $("business").textContent = info.businessName;
    else tr($("business"), "wifi");
    $("portal-message").textContent = info.portalMessage;
    $("portal-message").hidden = !info.portalMessage;
    if (info.supportPhone) {
      $("support-phone").href = "tel:+" + info.supportPhone;
      $("support-phone").textContent = localPhone(info.supportPhone);
    }
    $("support").hidden = !info.supportPhone;
  }

  function packageMeta(p) {
    var parts = [duration(p.durationMinutes)];
    if (p.downloadKbps) parts.push(t("up_to", { speed: speed(p.downloadKbps) }));
    if (p.dataLimitMb) parts.push(p.dataLimitMb >= 1000 ? +(p.dataLimitMb / 1000).toFixed(1) + " GB" : p.dataLimitMb + " MB");
    if (p.sharedUsers > 1) parts.push(t("devices", { n: p.sharedUsers }));
    // "1 hour" named "1 hour" (or "Daily 1GB" capped at 1 GB) says it once.
    var name = p.name.toLowerCase().replace(/\s+/g, "");
    return parts.filter(function (part) { return name.indexOf(part.toLowerCase().replace(/\s+/g, "")) < 0; }).join(" · ");
  }

  function renderPackages() {
    var box = $("packages");
    var chosen = chosenPackage();
    box.textContent = "";
    box.setAttribute("aria-busy", "false");
    if (!packages.length) {
      var none = document.createElement("p");
      none.className = "muted";
      tr(none, "no_packages");
      box.appendChild(none);
      return;
    }
    packages.forEach(function (p) {
      var label = document.createElement("label");
      label.className = "package";
      var input = document.createElement("input");
      input.type = "radio";
      input.name = "package";
      input.value = p.id;
      input.id = "package-" + p.id;
      input.checked = !!chosen && chosen.id === p.id;
      input.addEventListener("change", function () {
        box.querySelectorAll(".package").forEach(function (el) { el.classList.toggle("selected", el === label); });
        clearError();
        setStatus("enter_phone");
      });
      var text = document.createElement("span");
      var name = document.createElement("span");
      name.className = "name";
      name.textContent = p.name;
      var meta = document.createElement("span");
      meta.className = "meta";
      meta.textContent = packageMeta(p);
      text.appendChild(name);
      text.appendChild(meta);
      var price = document.createElement("span");
      price.className = "price";
      price.textContent = money(p.price);
      label.appendChild(input);
      label.appendChild(text);
      label.appendChild(price);
      box.appendChild(label);
    });
  }

  function loadPackages() {
    return gql(Q_PACKAGES, { r: ROUTER_ID }).then(
      function (data) {
        packages = data.packages || [];
        renderPackages();
        $("buy").hidden = !packages.length;
        if (!$("step-order").hidden) setStatus(packages.length ? orderStatus() : "nothing");
      },
      function (err) {
        $("packages").textContent = "";
        showError(err.code, err.message);
      }
    );
  }

  function orderStatus() { return chosenPackage() ? "enter_phone" : "choose"; }

  function chosenPackage() {
    var checked = document.querySelector('input[name="package"]:checked');
    return checked && packages ? packages.filter(function (p) { return p.id === checked.value; })[0] : null;
  }

  function showOrder() {
    stopGrant();
    setStatus(packages && !packages.length ? "nothing" : orderStatus());
    show("step-order");
  }

  // -- GraphQL over HTTP -------------------------------------------------------------------------

  function ApiError(code, message) { this.code = code; this.message = message; }

  function gql(query, variables) {
    return fetch(GRAPHQL_URL, {
      method: "POST",
      headers: { "Content-Type": "application/json", "X-Public-Key": KEY },
      body: JSON.stringify({ query: query, variables: variables || {} }),
    }).then(
      function (response) {
        return response.json().then(null, function () { throw new ApiError("NETWORK"); });
      },
      function () { throw new ApiError("NETWORK"); }
    ).then(function (body) {
      if (body.errors && body.errors.length) {
        var ext = body.errors[0].extensions || {};
        throw new ApiError(ext.code || "INTERNAL", body.errors[0].message);
      }
      return body.data;
    });
  }

  // -- codes: the box, the one this device holds, and getting online with one ---------------------

  // Customers type codes in lower case, with the sheet's dashes or spaces.
  function normalise(code) { return (code || "").toUpperCase().replace(/[\s-]+/g, ""); }

  function redeem(typed, busySince) {
    var code = normalise(typed);
    clearError();
    if (!code) { $("code-input").focus(); return fillError($("code-error"), "enter_code"); }
    var request = { routerId: ROUTER_ID, code: code, macAddress: MAC, ipAddress: IP };
    $("code-submit").disabled = true;
    setStatus(busySince ? "busy_retrying" : "checking");
    gql(M_REDEEM, { input: request }).then(
      function (data) {
        var result = data.redeemCode;
        var error = result.errors[0];
        // Someone is trying many codes on this hotspot: it is slowed, never locked. A refused turn
        // counts as no failure, so keep asking for a while instead of sending the customer away.
        var since = busySince || Date.now();
        if (error && error.code === "RATE_LIMITED" && Date.now() - since < BUSY_RETRY_MS) {
          return setTimeout(function () { redeem(code, since); }, BUSY_RETRY_EVERY_MS);
        }
        $("code-submit").disabled = false;
        // ROUTER_UNREACHABLE comes with the grant: the code is good, keep it for later.
        if (error && result.activation) store(CODE_STORE, result.activation.accessCode || code);
        if (error) return codeRefused(code, error);
        $("code-input").value = "";
        followGrant(result.activation, code);
      },
      function (err) {
        $("code-submit").disabled = false;
        setStatus(orderStatus());
        fillError($("code-error"), err.code, null, err.message);
      }
    );
  }

  function codeRefused(code, error) {
    setStatus(orderStatus());
    var box = $("code-error");
    if (error.code === "CODE_INVALID" || error.code === "CODE_EXPIRED") {
      if (stored(CODE_STORE) === code) store(CODE_STORE, null);
    }
    // Said our way, tagged with the server's code.
    var tell = function (key, vars) { fillError(box, key, vars, error.message); box.dataset.code = error.code; };
    if (error.code === "ROUTER_UNREACHABLE") return tell("unreachable_code", { code: code });
    if (error.code !== "DEVICE_LIMIT_REACHED") return tell(error.code);
    // "in use on N devices": N is the package's device slots, which a holder of the code may read.
    gql(Q_ACCESS, { r: ROUTER_ID, c: code }).then(function (data) {
      var n = data.accessStatus.devicesAllowed;
      if (n > 1) tell("device_limit", { n: n });
      else tell(n === 1 ? "device_limit_one" : error.code);
    }, function () { tell(error.code); });
  }

  // A grant from a code: online now, or PENDING while the router is slow (followed until it answers).
  function followGrant(grant, code) {
    stopGrant();
    var shown = grant.accessCode || code;
    store(CODE_STORE, shown);
    $("access-code").textContent = shown;
    var started = Date.now();
    var step = function (g) {
      if (g.status === "ACTIVE") return connected(shown, g.expiresAt);
      if (g.status === "EXPIRED" || g.status === "REVOKED") {
        store(CODE_STORE, null);
        showOrder();
        return fillError($("code-error"), "CODE_EXPIRED");
      }
      if (g.lastError || g.status === "FAILED" || Date.now() - started > SLOW_MS) slowRouter(false);
      else { setStatus("connecting"); $("connect").hidden = true; tr($("done-detail"), "connecting"); show("step-done"); }
      if (Date.now() - started > GRANT_POLL_FOR_MS) return;
      grantTimer = setTimeout(function () {
        gql(Q_ACCESS, { r: ROUTER_ID, c: shown }).then(function (data) {
          var s = data.accessStatus;
          if (s.errors.length) return step({ status: s.errors[0].code === "CODE_EXPIRED" ? "EXPIRED" : "PENDING" });
          step({ status: s.status, expiresAt: s.expiresAt });
        }, function () { step({ status: "PENDING" }); });
      }, GRANT_POLL_MS);
    };
    step(grant);
  }

  function stopGrant() { clearTimeout(grantTimer); grantTimer = null; }

  function connected(code, expiresAt) {
    stopGrant();
    store(CODE_STORE, code);
    $("access-code").textContent = code;
    if (expiresAt) setStatus("connected_until", { until: function () { return when(expiresAt); } });
    else setStatus("connected");
    tr($("done-detail"), "keep_code");
    show("step-done");
    logIn(code);
  }

  // The router has not taken the grant yet: the code at once, and the honest reason.
  function slowRouter(paid) {
    setStatus(paid ? "paid_use_code" : "connecting");
    tr($("done-detail"), paid ? "slow" : "slow_code");
    $("connect").hidden = !LOGIN_URL;
    show("step-done");
  }

  // A returning device: "Connected until …" from the code it holds, never from its MAC.
  function checkHeldCode(code) {
    setStatus("checking");
    return gql(Q_ACCESS, { r: ROUTER_ID, c: code }).then(function (data) {
      var s = data.accessStatus;
      var error = s.errors[0];
      if ((error && (error.code === "CODE_EXPIRED" || error.code === "CODE_INVALID")) ||
          (!error && (s.status === "EXPIRED" || s.status === "REVOKED"))) {
        store(CODE_STORE, null);
        return showOrder();
      }
      if (error) return showOrder();
      $("held-code").textContent = code;
      if (s.status === "ACTIVE" && s.expiresAt) setStatus("connected_until", { until: function () { return when(s.expiresAt); } });
      else setStatus(s.status === "ACTIVE" ? "connected" : "connecting");
      $("go-online").hidden = !LOGIN_URL;
      show("step-home");
    }, function () { showOrder(); });
  }

  // -- paying ------------------------------------------------------------------------------------

  function busy(on) { $("pay").disabled = on; $("pay-link").disabled = on; }

  function pay(kind) {
    clearError();
    var pkg = chosenPackage();
    var phone = $("phone").value.trim();
    if (!pkg) return showError("choose_first");
    if (kind === "stk" && !phone) { $("phone").focus(); return showError("INVALID_PHONE"); }
    var input = {
      routerId: ROUTER_ID, packageId: pkg.id, phoneNumber: phone, amount: pkg.price,
      macAddress: MAC, ipAddress: IP, idempotencyKey: attemptKey || (attemptKey = newKey()),
    };
    busy(true);
    setStatus(kind === "stk" ? "sending" : "creating_link");
    gql(kind === "stk" ? M_INITIATE : M_LINK, { input: input }).then(
      function (data) {
        busy(false);
        attemptKey = null; // answered: the next attempt is a new one
        var result = data.initiatePayment || data.createPaymentLink;
        var error = result.errors[0];
        var about = { pkg: pkg.name, amount: money(pkg.price), phone: phone ? maskPhone(phone) : "" };
        if (error && result.payment && result.payment.status === "PROCESSING") {
          // The push's answer was lost but the prompt may be on the phone: watch it, never push twice.
          return start(result.payment, about);
        }
        if (error) {
          setStatus(orderStatus());
          showError(error.code, error.message);
          if (error.code === "AMOUNT_MISMATCH" || error.code === "PACKAGE_NOT_FOUND") loadPackages();
          if (error.code === "INVALID_PHONE") $("phone").focus();
          return;
        }
        start(result.payment, about);
      },
      function (err) {
        busy(false); // attemptKey kept: a retry of a lost request must not push twice
        setStatus(orderStatus());
        showError(err.code, err.message);
      }
    );
  }

  function start(payment, about) {
    // The secret and what to say outlive a reload, a second tab and the trip to the checkout page.
    var saved = { id: payment.id, secret: payment.clientSecret, at: Date.now(), about: about, link: !!payment.paymentUrl };
    store(STORE, JSON.stringify(saved));
    resume(saved, payment);
  }

  function resume(saved, payment) {
    var about = saved.about || {};
    var vars = { package: about.pkg, amount: about.amount, phone: about.phone };
    tr($("wait-detail"), saved.link ? "wait_link" : "wait_push", vars);
    render(payment);
    if (!isOver(payment)) watch(payment.id, saved.secret);
  }

  // -- watching the payment ----------------------------------------------------------------------

  // A FAILED activation is retried by the server when the router answers again: keep following it.
  function isOver(p) {
    return p.status === "FAILED" || (p.activation && ["ACTIVE", "EXPIRED", "REVOKED"].indexOf(p.activation.status) >= 0);
  }

  function render(p) {
    if (p.status === "FAILED") {
      stopWatching();
      forget();
      setStatus("failed");
      reason($("failure-reason"), p.failureReason);
      return show("step-failed");
    }
    if (p.status === "COMPLETED") {
      var a = p.activation;
      if (a && a.accessCode) { $("access-code").textContent = a.accessCode; store(CODE_STORE, a.accessCode); }
      if (a && a.status === "ACTIVE") {
        stopWatching();
        forget();
        return connected(a.accessCode, a.expiresAt);
      }
      if (a && (a.status === "EXPIRED" || a.status === "REVOKED")) {
        stopWatching();
        forget();
        store(CODE_STORE, null);
        setStatus("time_up");
        tr($("done-detail"), "ended");
        $("connect").hidden = true;
        return show("step-done");
      }
      if (a && a.accessCode && (a.status === "FAILED" || a.lastError)) return slowRouter(true);
      setStatus("paid_connecting");
      tr($("wait-detail"), "switching_on");
      $("link-box").hidden = true;
      return show("step-wait");
    }
    // PENDING (a link not paid yet) or PROCESSING (waiting for the PIN)
    setStatus(p.paymentUrl && p.status === "PENDING" ? "waiting_payment" : "check_phone");
    if (p.paymentUrl) {
      $("payment-link").href = p.paymentUrl;
      $("link-box").hidden = false;
    }
    show("step-wait");
  }

  function reason(el, text) {
    var key = !text ? "not_through" : /cancel/i.test(text) ? "cancelled" : "not_through_because";
    say(el, function () { el.textContent = t(key, { reason: text }); addHelp(el); });
  }

  function logIn(code) {
    if (!code || loggedIn) return;
    loggedIn = true;
    if (!LOGIN_URL) {
      $("connect").hidden = true;
      return say($("done-detail"), function (el) { el.textContent = t("keep_code") + " " + t("type_on_hotspot"); });
    }
    $("connect").hidden = false;
    setTimeout(function () { submitLogin(code); }, LOGIN_DELAY_MS);
  }

  function submitLogin(code) {
    var form = $("login-form");
    form.action = LOGIN_URL;
    form.elements.username.value = code;
    form.elements.password.value = code;
    form.elements.dst.value = ORIGINAL_URL || "";
    form.submit();
  }

  function forget() { store(STORE, null); }

  function stopWatching() {
    if (watcher) watcher.stop();
    watcher = null;
  }

  function watch(id, secret) {
    stopWatching();
    var stopped = false;
    var timers = [];
    var socket = null;
    var fellBack = false;

    function stop() {
      stopped = true;
      timers.forEach(clearInterval);
      if (socket) { try { socket.close(1000); } catch (e) { /* ignore */ } }
    }

    function apply(p) { if (!stopped && p) render(p); }

    function poll() {
      gql(Q_PAYMENT, { id: id, s: secret }).then(function (d) { apply(d.payment); }, function () { /* try again next tick */ });
    }

    function fallBack() {
      if (stopped || fellBack) return;
      fellBack = true;
      poll();
      timers.push(setInterval(poll, POLL_MS));
    }

    // A webhook can be lost: every so often ask IntaSend through the API as well.
    timers.push(setInterval(function () {
      gql(M_CHECK, { id: id, s: secret }).then(function (d) { apply(d.checkPaymentStatus.payment); }, function () {});
    }, NUDGE_MS));

    socket = subscribe(id, secret, apply, fallBack);
    watcher = { stop: stop };
  }

  // graphql-transport-ws, just what a subscriber needs:
  // connection_init → connection_ack → subscribe → next* → complete; ping ↔ pong.
  function subscribe(id, secret, onPayment, onFailure) {
    var ws;
    var finished = false;
    var acked = false;
    var over = false;
    try {
      ws = new WebSocket(WS_URL, "graphql-transport-ws");
    } catch (e) {
      onFailure();
      return null;
    }
    var send = function (message) { ws.send(JSON.stringify(message)); };
    var fail = function () {
      if (finished) return;
      finished = true;
      try { ws.close(); } catch (e) { /* ignore */ }
      onFailure();
    };
    var ackTimer = setTimeout(function () { if (!acked) fail(); }, 5000);
    ws.onopen = function () { send({ type: "connection_init", payload: { "X-Public-Key": KEY } }); };
    ws.onmessage = function (event) {
      var message;
      try { message = JSON.parse(event.data); } catch (e) { return; }
      if (message.type === "connection_ack") {
        acked = true;
        clearTimeout(ackTimer);
        send({ id: "1", type: "subscribe", payload: { query: S_UPDATES, variables: { id: id, s: secret } } });
      } else if (message.type === "ping") {
        send({ type: "pong" });
      } else if (message.type === "next" && message.id === "1") {
        var payload = message.payload || {};
        if (payload.errors && payload.errors.length) return fail();
        var p = payload.data && payload.data.paymentUpdates;
        over = !!(p && isOver(p));
        onPayment(p);
        if (over) { finished = true; ws.close(1000); }
      } else if (message.type === "error") {
        fail();
      } else if (message.type === "complete") {
        if (over) { finished = true; ws.close(1000); } else fail(); // ended early: poll instead
      }
    };
    ws.onerror = fail;
    ws.onclose = function () { clearTimeout(ackTimer); fail(); };
    return ws;
  }

  function startOver() {
    stopWatching();
    forget();
    clearError();
    loggedIn = false;
    $("link-box").hidden = true;
    showOrder();
  }

  // -- wiring ------------------------------------------------------------------------------------

  $("pay").addEventListener("click", function () { pay("stk"); });
  $("pay-link").addEventListener("click", function () { pay("link"); });
  $("phone").addEventListener("input", function () { attemptKey = null; });
  $("packages").addEventListener("change", function () { attemptKey = null; });
  $("retry").addEventListener("click", startOver);
  $("start-over").addEventListener("click", startOver);
  $("buy-more").addEventListener("click", showOrder);
  $("done-buy").addEventListener("click", function () { stopWatching(); showOrder(); });
  $("connect").addEventListener("click", function () { submitLogin($("access-code").textContent); });
  $("go-online").addEventListener("click", function () { submitLogin($("held-code").textContent); });
  $("code-form").addEventListener("submit", function (event) { event.preventDefault(); redeem($("code-input").value); });
  ["EN", "SW"].forEach(function (code) {
    $("lang-" + code).addEventListener("click", function () {
      document.cookie = LANG_COOKIE + "=" + code.toLowerCase() + "; path=/; max-age=31536000; samesite=lax";
      setLanguage(code);
    });
  });
  Array.prototype.forEach.call(document.querySelectorAll("[data-i18n]"), function (el) { tr(el, el.dataset.i18n); });
  setLanguage(lang);

  // A voucher's QR code opens login.html with #code=…, which hands it on to this page.
  var fragmentCode = clean(new URLSearchParams(location.hash.slice(1)).get("code"));
  if (fragmentCode) history.replaceState(null, "", location.pathname + location.search);
  var routerError = clean(params.get("error"));

  function begin() {
    if (routerError) fillError($("code-error"), "hotspot_said", { error: routerError });
    if (fragmentCode) {
      showOrder();
      $("code-input").value = fragmentCode;
      return redeem(fragmentCode);
    }
    var saved = null;
    try { saved = JSON.parse(stored(STORE) || "null"); } catch (e) { /* ignore */ }
    if (saved && saved.id && saved.secret && Date.now() - saved.at < PAYMENT_KEPT_MS) {
      // Back from the payment page, reloaded, or another tab: pick the payment up where it was.
      return gql(Q_PAYMENT, { id: saved.id, s: saved.secret }).then(function (d) {
        if (d.payment) resume(saved, d.payment); else { forget(); showOrder(); }
      }, function () { showOrder(); });
    }
    var held = stored(CODE_STORE);
    // The hotspot refused a login: the box (with the code this device holds), not "Connected until".
    if (held && !routerError) return checkHeldCode(held);
    if (held) $("code-input").value = held;
    showOrder();
  }

  var infoRead = gql(Q_INFO, { r: ROUTER_ID || null }).then(function (data) {
    var p = data.portalInfo;
    info = { businessName: p.businessName, supportPhone: p.supportPhone, portalMessage: p.portalMessage,
             timeZone: p.timeZone || "Africa/Nairobi", router: p.router };
    if (!chosenLanguage()) lang = p.language;
    showHeader();
    setLanguage(lang);
    return p.router;
  }, function (err) { showError(err.code, err.message); return false; });

  infoRead.then(function (router) {
    if (router === false) return; // no answer from the server: its message is up
    if (!router || !ROUTER_ID) {
      // Nothing can be sold or redeemed here: say so, with the operator's line.
      show(null);
      setStatus("not_set_up");
      return showError("ROUTER_NOT_FOUND");
    }
    return loadPackages().then(begin);
  });
})();
