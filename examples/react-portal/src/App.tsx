import { useApolloClient, useQuery } from "@apollo/client/react";
import { useCallback, useEffect, useRef, useState } from "react";
import type { ResolvedConfig } from "./config";
import type { PackagesQuery as PackagesResult, PaymentFieldsFragment } from "./gql/graphql";
import { postLogin, readHotspotVisit } from "./hotspot";
import { describe, problemsOf, type Problem } from "./messages";
import { CreatePaymentLinkMutation, InitiatePaymentMutation, PackagesQuery, PaymentQuery } from "./operations";
import { isSettled, watchPayment, type WatchMode } from "./watch";

type Package = PackagesResult["packages"][number];
type PayKind = "stk" | "link";
interface SavedPayment {
  id: string;
  secret: string;
  at: number;
}

const LOGIN_DELAY_MS = 3000; // show the code a moment before the hotspot's login page takes over
const RESUME_WITHIN_MS = 30 * 60 * 1000;

// 128 random bits as 32 hex characters: the server refuses shorter keys from portals, since replaying
// a key returns the payment with its clientSecret.
function newIdempotencyKey(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

function money(amount: string | number): string {
  const n = Number(amount);
  return `KES ${Number.isInteger(n) ? n.toFixed(0) : n.toFixed(2)}`;
}

function duration(minutes: number): string {
  const plural = (n: number, word: string) => `${n} ${word}${n === 1 ? "" : "s"}`;
  if (minutes % 1440 === 0) return plural(minutes / 1440, "day");
  if (minutes % 60 === 0) return plural(minutes / 60, "hour");
  return `${minutes} min`;
}

function packageMeta(p: Package): string {
  const parts = [duration(p.durationMinutes)];
  if (p.downloadKbps) parts.push(`up to ${p.downloadKbps >= 1000 ? `${+(p.downloadKbps / 1024).toFixed(1)} Mbps` : `${p.downloadKbps} kbps`}`);
  if (p.dataLimitMb) parts.push(p.dataLimitMb >= 1000 ? `${+(p.dataLimitMb / 1000).toFixed(1)} GB` : `${p.dataLimitMb} MB`);
  return parts.join(" · ");
}

function failureReason(text: string | null): string {
  if (!text) return "The payment did not go through.";
  if (/cancel/i.test(text)) return "The M-Pesa request was cancelled, so nothing was charged.";
  return `The payment did not go through: ${text}`;
}

export function App({ config }: { config: ResolvedConfig }) {
  const client = useApolloClient();
  const [visit] = useState(() => readHotspotVisit(location.search, config.hotspotAddresses));
  const routerId = visit.routerId ?? config.routerId ?? null;
  const storeKey = `cloudpilot.payment.${config.publicKey}`;

  const packages = useQuery(PackagesQuery, { variables: { routerId: routerId ?? "" }, skip: !routerId });
  const [packageId, setPackageId] = useState<string | null>(null);
  const [phone, setPhone] = useState("");
  const [busy, setBusy] = useState(false);
  const [problems, setProblems] = useState<Problem[]>([]);
  const [payment, setPayment] = useState<PaymentFieldsFragment | null>(null);
  const [mode, setMode] = useState<WatchMode | null>(null);
  const attemptKey = useRef<string | null>(null); // kept while retrying a lost request: never push twice
  const stopWatching = useRef<(() => void) | null>(null);

  const chosen = packages.data?.packages.find((p) => p.id === packageId) ?? null;

  const follow = useCallback(
    (id: string, secret: string) => {
      stopWatching.current?.();
      stopWatching.current = watchPayment(client, id, secret, setPayment, setMode);
    },
    [client],
  );

  const begin = (paid: PaymentFieldsFragment & { clientSecret: string | null }) => {
    // The secret outlives a reload (and the trip to the checkout page) in this tab only.
    const saved: SavedPayment = { id: paid.id, secret: paid.clientSecret ?? "", at: Date.now() };
    sessionStorage.setItem(storeKey, JSON.stringify(saved));
    setPayment(paid);
    follow(paid.id, saved.secret);
  };

  // Back from the checkout page, or reloaded: pick the payment up where it was.
  useEffect(() => {
    const saved = JSON.parse(sessionStorage.getItem(storeKey) ?? "null") as SavedPayment | null;
    if (!saved || Date.now() - saved.at > RESUME_WITHIN_MS) return;
    client
      .query({ query: PaymentQuery, variables: { id: saved.id, clientSecret: saved.secret }, fetchPolicy: "no-cache" })
      .then(({ data }) => {
        if (!data?.payment) return sessionStorage.removeItem(storeKey);
        setPayment(data.payment);
        if (!isSettled(data.payment)) follow(saved.id, saved.secret);
      }, () => undefined);
    return () => stopWatching.current?.();
  }, [client, follow, storeKey]);

  const pay = async (kind: PayKind) => {
    setProblems([]);
    if (!chosen || !routerId) return setProblems([{ code: null, message: "Choose a package first." }]);
    if (kind === "stk" && !phone.trim()) return setProblems([{ code: "INVALID_PHONE", message: "" }]);
    attemptKey.current ??= newIdempotencyKey();
    const input = {
      routerId,
      packageId: chosen.id,
      phoneNumber: phone.trim(),
      amount: chosen.price,
      macAddress: visit.mac,
      ipAddress: visit.ip,
      idempotencyKey: attemptKey.current,
    };
    setBusy(true);
    try {
      const { data } =
        kind === "stk"
          ? await client.mutate({ mutation: InitiatePaymentMutation, variables: { input }, fetchPolicy: "no-cache" })
          : await client.mutate({ mutation: CreatePaymentLinkMutation, variables: { input }, fetchPolicy: "no-cache" });
      attemptKey.current = null; // answered: the next attempt is a new one
      const result = data && ("initiatePayment" in data ? data.initiatePayment : data.createPaymentLink);
      if (!result) return;
      // The push's answer was lost but the prompt may be on the phone: watch it, never push twice.
      if (result.payment && (!result.errors.length || result.payment.status === "PROCESSING")) {
        return begin(result.payment);
      }
      setProblems(result.errors);
      if (result.errors.some((e) => e.code === "AMOUNT_MISMATCH" || e.code === "PACKAGE_NOT_FOUND")) {
        void packages.refetch();
      }
    } catch (error) {
      setProblems(problemsOf(error)); // attemptKey kept: a retry of a lost request must not push twice
    } finally {
      setBusy(false);
    }
  };

  const startOver = () => {
    stopWatching.current?.();
    sessionStorage.removeItem(storeKey);
    setPayment(null);
    setMode(null);
    setProblems([]);
  };

  const activation = payment?.activation ?? null;
  const code = activation?.accessCode ?? null;
  const active = payment?.status === "COMPLETED" && activation?.status === "ACTIVE";

  useEffect(() => {
    if (payment?.status === "FAILED") sessionStorage.removeItem(storeKey);
    if (!active || !code || !visit.loginUrl) return;
    const loginUrl = visit.loginUrl;
    const timer = window.setTimeout(() => postLogin(loginUrl, code, visit.originalUrl), LOGIN_DELAY_MS);
    return () => window.clearTimeout(timer);
  }, [active, code, payment?.status, storeKey, visit.loginUrl, visit.originalUrl]);

  const allProblems: Problem[] = [
    ...(!routerId ? [{ code: "ROUTER_NOT_FOUND" as const, message: "" }] : []),
    ...(packages.error ? problemsOf(packages.error) : []),
    ...(visit.error ? [{ code: null, message: `The hotspot said: ${visit.error}` }] : []),
    ...problems,
  ];

  let status: string;
  let step: "order" | "wait" | "done" | "failed";
  if (!payment) {
    step = "order";
    status = chosen ? "Enter your phone number" : "Choose a package";
  } else if (payment.status === "FAILED") {
    step = "failed";
    status = "Payment failed";
  } else if (active) {
    step = "done";
    status = "Connected";
  } else if (payment.status === "COMPLETED" && (activation?.status === "FAILED" || activation?.status === "EXPIRED")) {
    step = "done";
    status = activation.status === "EXPIRED" ? "Your time is up" : "Paid: use your access code";
  } else if (payment.status === "COMPLETED") {
    step = "wait";
    status = "Paid, connecting…";
  } else {
    step = "wait";
    status = payment.paymentUrl && payment.status === "PENDING" ? "Waiting for your payment" : "Check your phone";
  }

  return (
    <main data-watch-mode={mode ?? ""}>
      <header>
        <h1>WiFi</h1>
        <p className="lead">Buy internet time and pay with M-Pesa.</p>
      </header>
      <p id="status" className="status" role="status" aria-live="polite">{status}</p>
      {allProblems.length > 0 && (
        <ul id="errors" className="errors" role="alert">
          {allProblems.map((problem, i) => (
            <li key={i} data-code={problem.code ?? ""} data-field={problem.field ?? ""}>{describe(problem)}</li>
          ))}
        </ul>
      )}

      {step === "order" && (
        <section id="step-order">
          <fieldset>
            <legend>Package</legend>
            {packages.loading && <p className="muted">Loading packages…</p>}
            {packages.data?.packages.length === 0 && <p className="muted">No packages are on sale on this hotspot right now.</p>}
            {packages.data?.packages.map((p) => (
              <label key={p.id} className={`package${p.id === packageId ? " selected" : ""}`}>
                <input
                  type="radio"
                  name="package"
                  id={`package-${p.id}`}
                  value={p.id}
                  checked={p.id === packageId}
                  onChange={() => { setPackageId(p.id); attemptKey.current = null; setProblems([]); }}
                />
                <span className="name">{p.name}</span>
                <span className="meta">{packageMeta(p)}</span>
                <span className="price">{money(p.price)}</span>
              </label>
            ))}
          </fieldset>
          <label htmlFor="phone">M-Pesa phone number</label>
          <input
            id="phone"
            type="tel"
            inputMode="tel"
            autoComplete="tel"
            placeholder="0712 345 678"
            maxLength={20}
            value={phone}
            onChange={(event) => { setPhone(event.target.value); attemptKey.current = null; }}
          />
          <button id="pay" type="button" className="primary" disabled={busy} onClick={() => void pay("stk")}>
            Pay with M-Pesa
          </button>
          <button id="pay-link" type="button" disabled={busy} onClick={() => void pay("link")}>
            Get a payment link instead
          </button>
        </section>
      )}

      {step === "wait" && payment && (
        <section id="step-wait">
          <p id="wait-detail">
            {payment.status === "COMPLETED"
              ? "Payment received. Switching on your internet access…"
              : payment.paymentUrl
                ? `Pay ${money(payment.amount)} for ${payment.package.name} on the payment page.`
                : `We sent a payment request to ${phone}. Enter your M-Pesa PIN to pay ${money(payment.amount)}.`}
          </p>
          {payment.paymentUrl && payment.status !== "COMPLETED" && (
            <p>
              <a id="payment-link" className="button primary" href={payment.paymentUrl} target="_blank" rel="noopener">
                Open the payment page
              </a>{" "}
              <span className="muted">Pay there, then come back to this page.</span>
            </p>
          )}
          <button id="start-over" type="button" onClick={startOver}>Start over</button>
        </section>
      )}

      {step === "done" && payment && (
        <section id="step-done">
          <p className="muted">Your access code</p>
          <p id="access-code" className="code">{code}</p>
          <p id="done-detail">
            {active
              ? `Keep this code: you can log in again with it${activation?.expiresAt ? ` until ${new Date(activation.expiresAt).toLocaleString()}` : ""}.`
              : activation?.status === "EXPIRED"
                ? "This package has ended. Buy another one to keep browsing."
                : "The hotspot did not switch you on by itself. Log in with this code, or show it to the hotspot owner."}
            {active && !visit.loginUrl && " If the internet does not open, type this code on the hotspot's login page."}
          </p>
          {visit.loginUrl && code && activation?.status !== "EXPIRED" && (
            <button id="connect" type="button" className="primary" onClick={() => postLogin(visit.loginUrl!, code, visit.originalUrl)}>
              Go online
            </button>
          )}
        </section>
      )}

      {step === "failed" && payment && (
        <section id="step-failed">
          <p id="failure-reason">{failureReason(payment.failureReason)}</p>
          <button id="retry" type="button" className="primary" onClick={startOver}>Try again</button>
        </section>
      )}
    </main>
  );
}
