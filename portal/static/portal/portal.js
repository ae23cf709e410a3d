/* CloudPilot reference captive portal: choose a package, pay by M-Pesa, go online.
 *
 * Talks only to this server: GraphQL over HTTP (X-Public-Key), live status over the
 * graphql-transport-ws WebSocket protocol, falling back to polling `payment` when WebSockets fail.
 * The hotspot's login.html hands over routerId, mac, ip, link-login-only and link-orig in the query
 * string; once the access code is active it is posted to the login URL the server rendered into the
 * page (data-login-url): the router's registered hotspot address, never a host from this page's URL.
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
  var LOGIN_DELAY_MS = 3000; // show the code for a moment before the router's login page takes over
  var STORE = "cloudpilot.payment." + KEY;

  // A message for every ErrorCode the API can return (project/errors.py), plus transport failures.
  var MESSAGES = {
    INVALID_INPUT: "Something in the form is not right. Please check it and try again.",
    INVALID_PHONE: "Enter a Safaricom/Airtel number like 0712 345 678.",
    INVALID_MAC: "The hotspot did not identify your device. Reconnect to the WiFi and open this page again.",
    INVALID_IP: "The hotspot gave your device an unexpected address. Reconnect to the WiFi and try again.",
    AMOUNT_MISMATCH: "The price of this package has just changed. Check the new price and try again.",
    ROUTER_NOT_FOUND: "This hotspot is not set up for payments. Please tell the hotspot owner.",
    PACKAGE_NOT_FOUND: "That package is no longer on sale. Please choose another one.",
    PAYMENT_NOT_FOUND: "We could not find your payment. Please start again.",
    NO_CREDENTIALS: "Payments are not set up on this hotspot yet. Please tell the hotspot owner.",
    NOT_INTASEND_PAYMENT: "This payment cannot be checked here. Please contact the hotspot owner.",
    GATEWAY_ERROR: "The payment service turned the request down. Please try again in a moment.",
    GATEWAY_UNAVAILABLE: "The payment service is not answering. Please try again in a moment.",
    DECRYPTION_FAILED: "Payments on this hotspot need to be set up again. Please tell the hotspot owner.",
    RATE_LIMITED: "Too many attempts. Please wait a few minutes and try again.",
    PAYMENT_ALREADY_PENDING: "A payment request is already waiting on your phone. Enter your M-Pesa PIN there.",
    IDEMPOTENCY_MISMATCH: "Your last attempt changed while it was being sent. Please try again.",
    AUTHENTICATION_FAILED: "This hotspot's payment page is out of date. Please reconnect to the WiFi.",
    ACTIVATION_NOT_RETRYABLE: "Your access cannot be restarted from here. Contact the hotspot owner with your M-Pesa receipt.",
    ROUTER_UNREACHABLE: "The hotspot is not reachable right now. Your payment is safe; please try again shortly.",
    ROUTER_NOT_ALLOWED: "This hotspot is not set up for payments. Please tell the hotspot owner.",
    CODE_INVALID: "That code is not valid on this hotspot. Check it and try again.",
    SERVICE_UNAVAILABLE: "The payment server is busy. Please try again in a moment.",
    CODE_EXPIRED: "The time on that code is over. Buy a package to get back online.",
    DEVICE_LIMIT_REACHED: "That code is already in use on as many devices as its package allows.",
    VOUCHER_NOT_FOUND: "That code is not valid on this hotspot. Check it and try again.",
    ACTIVATION_NOT_FOUND: "That code is not valid on this hotspot. Check it and try again.",
    // Operator-side and protocol codes: a portal meets them only when something is misconfigured.
    INVALID_CREDENTIALS: "This hotspot is not set up for payments. Please tell the hotspot owner.",
    PERSISTED_QUERY_NOT_FOUND: "Something went wrong on the payment server. Please try again.",
    INTERNAL: "Something went wrong on the payment server. Please try again.",
    UNAUTHENTICATED: "This hotspot's payment page is out of date. Please reconnect to the WiFi.",
    NETWORK: "No connection to the payment server. Check that you are on the WiFi and try again.",
    INTERNAL: "Something went wrong on our side. Please try again.",
  };

  var PAYMENT_FIELDS =
    "fragment P on Payment { id status failureReason paymentUrl amount currency " +
    "package { name durationMinutes } activation { status accessCode lastError expiresAt } }";
  var Q_PACKAGES =
    "query($r: ID!) { packages(routerId: $r) { id name price durationMinutes uploadKbps downloadKbps dataLimitMb } }";
  // $s is the payment's clientSecret: only the page that started the payment holds it.
  var Q_PAYMENT = "query($id: UUID!, $s: String) { payment(id: $id, clientSecret: $s) { ...P } } " + PAYMENT_FIELDS;
  var M_CHECK = "mutation($id: UUID!, $s: String) { checkPaymentStatus(paymentId: $id, clientSecret: $s) { payment { ...P } errors { code message } } } " + PAYMENT_FIELDS;
  var S_UPDATES = "subscription($id: UUID!, $s: String) { paymentUpdates(paymentId: $id, clientSecret: $s) { ...P } } " + PAYMENT_FIELDS;
  var PAY_FIELDS = "{ payment { ...P clientSecret } errors { field code message } }";
  var M_INITIATE = "mutation($input: PaymentInput!) { initiatePayment(input: $input) " + PAY_FIELDS + " } " + PAYMENT_FIELDS;
  var M_LINK = "mutation($input: PaymentInput!) { createPaymentLink(input: $input) " + PAY_FIELDS + " } " + PAYMENT_FIELDS;

  var $ = function (id) { return document.getElementById(id); };
  var packages = [];
  var attemptKey = null; // idempotency key of the current attempt, kept while retrying a lost request
  var watcher = null;
  var loggedIn = false;

  function clean(value) {
    value = (value || "").trim();
    return value && value !== "---" && value.indexOf("$(") !== 0 ? value : null;
  }

  // 128 random bits as 32 hex characters: the server refuses shorter keys from portals, since
  // replaying a key returns the payment with its clientSecret.
  function newKey() {
    var bytes = new Uint8Array(16);
    (window.crypto || window.msCrypto).getRandomValues(bytes);
    return Array.prototype.map.call(bytes, function (b) { return ("0" + b.toString(16)).slice(-2); }).join("");
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

  // -- what the customer sees --------------------------------------------------------------------

  function show(step) {
    ["step-order", "step-wait", "step-done", "step-failed"].forEach(function (id) { $(id).hidden = id !== step; });
  }

  function setStatus(text) { $("status").textContent = text; }

  function showError(code, fallback) {
    var box = $("error");
    box.textContent = MESSAGES[code] || fallback || MESSAGES.INTERNAL;
    box.dataset.code = code || "";
    box.hidden = false;
  }

  function clearError() { $("error").hidden = true; $("error").textContent = ""; }

  function money(amount) {
    var n = Number(amount);
    return "KES " + (n % 1 === 0 ? n.toFixed(0) : n.toFixed(2));
  }

  function duration(minutes) {
    if (minutes % 1440 === 0) return plural(minutes / 1440, "day");
    if (minutes % 60 === 0) return plural(minutes / 60, "hour");
    return minutes + " min";
  }

  function plural(n, word) { return n + " " + word + (n === 1 ? "" : "s"); }

  function speed(kbps) { return kbps >= 1000 ? +(kbps / 1024).toFixed(1) + " Mbps" : kbps + " kbps"; }

  function packageMeta(p) {
    var parts = [duration(p.durationMinutes)];
    if (p.downloadKbps) parts.push("up to " + speed(p.downloadKbps));
    if (p.dataLimitMb) parts.push(p.dataLimitMb >= 1000 ? +(p.dataLimitMb / 1000).toFixed(1) + " GB" : p.dataLimitMb + " MB");
    return parts.join(" · ");
  }

  function renderPackages() {
    var box = $("packages");
    box.textContent = "";
    box.setAttribute("aria-busy", "false");
    if (!packages.length) {
      var none = document.createElement("p");
      none.className = "muted";
      none.textContent = "No packages are on sale on this hotspot right now.";
      box.appendChild(none);
      return;
    }
    packages.forEach(function (p, i) {
      var label = document.createElement("label");
      label.className = "package";
      var input = document.createElement("input");
      input.type = "radio";
      input.name = "package";
      input.value = p.id;
      input.id = "package-" + p.id;
      input.addEventListener("change", function () {
        box.querySelectorAll(".package").forEach(function (el) { el.classList.toggle("selected", el === label); });
        clearError();
        setStatus("Enter your phone number");
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
    if (!ROUTER_ID) {
      renderPackages();
      showError("ROUTER_NOT_FOUND");
      return Promise.resolve();
    }
    return gql(Q_PACKAGES, { r: ROUTER_ID }).then(
      function (data) {
        packages = data.packages || [];
        renderPackages();
        setStatus(packages.length ? orderStatus() : "Nothing on sale right now");
      },
      function (err) {
        $("packages").textContent = "";
        showError(err.code, err.message);
      }
    );
  }

  function orderStatus() { return chosenPackage() ? "Enter your phone number" : "Choose a package"; }

  function chosenPackage() {
    var checked = document.querySelector('input[name="package"]:checked');
    return checked ? packages.filter(function (p) { return p.id === checked.value; })[0] : null;
  }

  // -- paying ------------------------------------------------------------------------------------

  function busy(on) { $("pay").disabled = on; $("pay-link").disabled = on; }

  function pay(kind) {
    clearError();
    var pkg = chosenPackage();
    var phone = $("phone").value.trim();
    if (!pkg) return showError(null, "Choose a package first.");
    if (kind === "stk" && !phone) { $("phone").focus(); return showError("INVALID_PHONE"); }
    var input = {
      routerId: ROUTER_ID, packageId: pkg.id, phoneNumber: phone, amount: pkg.price,
      macAddress: MAC, ipAddress: IP, idempotencyKey: attemptKey || (attemptKey = newKey()),
    };
    busy(true);
    setStatus(kind === "stk" ? "Sending the payment request…" : "Creating your payment link…");
    gql(kind === "stk" ? M_INITIATE : M_LINK, { input: input }).then(
      function (data) {
        busy(false);
        attemptKey = null; // answered: the next attempt is a new one
        var result = data.initiatePayment || data.createPaymentLink;
        var error = result.errors[0];
        if (error && result.payment && result.payment.status === "PROCESSING") {
          // The push's answer was lost but the prompt may be on the phone: watch it, never push twice.
          return start(result.payment, pkg, phone);
        }
        if (error) {
          setStatus(orderStatus());
          showError(error.code, error.message);
          if (error.code === "AMOUNT_MISMATCH" || error.code === "PACKAGE_NOT_FOUND") loadPackages();
          if (error.code === "INVALID_PHONE") $("phone").focus();
          return;
        }
        start(result.payment, pkg, phone);
      },
      function (err) {
        busy(false); // attemptKey kept: a retry of a lost request must not push twice
        setStatus(orderStatus());
        showError(err.code, err.message);
      }
    );
  }

  function start(payment, pkg, phone) {
    // The secret outlives a reload (and the trip to the checkout page) in this tab only.
    var saved = { id: payment.id, secret: payment.clientSecret, at: Date.now() };
    try { sessionStorage.setItem(STORE, JSON.stringify(saved)); } catch (e) { /* private mode */ }
    $("wait-detail").textContent = payment.paymentUrl
      ? "Pay " + money(payment.amount) + " for " + pkg.name + " on the payment page."
      : "We sent a payment request to " + phone + ". Enter your M-Pesa PIN to pay " + money(payment.amount) + ".";
    render(payment);
    watch(payment.id, payment.clientSecret);
  }

  // -- watching the payment ----------------------------------------------------------------------

  function isOver(p) {
    return p.status === "FAILED" || (p.activation && p.activation.status !== "PENDING");
  }

  function render(p) {
    if (p.status === "FAILED") {
      stopWatching();
      forget();
      setStatus("Payment failed");
      $("failure-reason").textContent = reason(p.failureReason);
      return show("step-failed");
    }
    if (p.status === "COMPLETED") {
      var a = p.activation;
      if (a && a.accessCode) $("access-code").textContent = a.accessCode;
      if (a && a.status === "ACTIVE") {
        stopWatching();
        setStatus("Connected");
        $("done-detail").textContent = "Keep this code: you can log in again with it" +
          (a.expiresAt ? " until " + new Date(a.expiresAt).toLocaleString() : "") + ".";
        show("step-done");
        return logIn(a.accessCode);
      }
      if (a && (a.status === "FAILED" || a.status === "EXPIRED")) {
        stopWatching();
        setStatus(a.status === "EXPIRED" ? "Your time is up" : "Paid: use your access code");
        $("done-detail").textContent = a.status === "EXPIRED"
          ? "This package has ended. Buy another one to keep browsing."
          : "The hotspot did not switch you on by itself. Log in with this code, or show it to the hotspot owner.";
        $("connect").hidden = !(LOGIN_URL && a.accessCode && a.status === "FAILED");
        return show("step-done");
      }
      setStatus("Paid, connecting…");
      $("wait-detail").textContent = "Payment received. Switching on your internet access…";
      $("link-box").hidden = true;
      return show("step-wait");
    }
    // PENDING (a link not paid yet) or PROCESSING (waiting for the PIN)
    setStatus(p.paymentUrl && p.status === "PENDING" ? "Waiting for your payment" : "Check your phone");
    if (p.paymentUrl) {
      $("payment-link").href = p.paymentUrl;
      $("link-box").hidden = false;
    }
    show("step-wait");
  }

  function reason(text) {
    if (!text) return "The payment did not go through.";
    if (/cancel/i.test(text)) return "The M-Pesa request was cancelled, so nothing was charged.";
    return "The payment did not go through: " + text;
  }

  function logIn(code) {
    if (!code || loggedIn) return;
    loggedIn = true;
    if (!LOGIN_URL) {
      $("done-detail").textContent += " If the internet does not open, type this code on the hotspot's login page.";
      return;
    }
    $("connect").hidden = false;
    setTimeout(submitLogin, LOGIN_DELAY_MS);
  }

  function submitLogin() {
    var code = $("access-code").textContent;
    var form = $("login-form");
    form.action = LOGIN_URL;
    form.elements.username.value = code;
    form.elements.password.value = code;
    form.elements.dst.value = ORIGINAL_URL || "";
    form.submit();
  }

  function forget() { try { sessionStorage.removeItem(STORE); } catch (e) { /* ignore */ } }

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
    setStatus(orderStatus());
    show("step-order");
  }

  // -- wiring ------------------------------------------------------------------------------------

  $("pay").addEventListener("click", function () { pay("stk"); });
  $("pay-link").addEventListener("click", function () { pay("link"); });
  $("phone").addEventListener("input", function () { attemptKey = null; });
  $("packages").addEventListener("change", function () { attemptKey = null; });
  $("retry").addEventListener("click", startOver);
  $("start-over").addEventListener("click", startOver);
  $("connect").addEventListener("click", submitLogin);

  var routerError = clean(params.get("error"));
  loadPackages().then(function () {
    if (routerError) showError(null, "The hotspot said: " + routerError);
    var saved = null;
    try { saved = JSON.parse(sessionStorage.getItem(STORE) || "null"); } catch (e) { /* ignore */ }
    if (saved && saved.id && saved.secret && Date.now() - saved.at < 30 * 60 * 1000) {
      // Back from the payment page, or reloaded: pick the payment up where it was.
      gql(Q_PAYMENT, { id: saved.id, s: saved.secret }).then(function (d) {
        if (d.payment) { render(d.payment); if (!isOver(d.payment)) watch(d.payment.id, saved.secret); } else forget();
      }, function () {});
    }
  });
})();
