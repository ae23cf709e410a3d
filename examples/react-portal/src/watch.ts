import type { ApolloClient } from "@apollo/client";
import type { PaymentFieldsFragment } from "./gql/graphql";
import { CheckPaymentStatusMutation, PaymentQuery, PaymentUpdatesSubscription } from "./operations";

const POLL_MS = 3000;
const NUDGE_MS = 15000; // ask IntaSend through the API this often too, in case its webhook was lost

export type WatchMode = "live" | "polling";

/** Nothing more will change that the portal waits for: failed, or the activation got an answer. */
export function isSettled(payment: PaymentFieldsFragment): boolean {
  return payment.status === "FAILED" || (payment.activation != null && payment.activation.status !== "PENDING");
}

/**
 * Follows one payment until it settles: live over the paymentUpdates subscription, else (the socket
 * blocked, refused or dropped early) by polling `payment` every few seconds. Returns a stop function.
 */
export function watchPayment(
  client: ApolloClient,
  id: string,
  clientSecret: string,
  onPayment: (payment: PaymentFieldsFragment) => void,
  onMode: (mode: WatchMode) => void,
): () => void {
  const variables = { id, clientSecret };
  const timers: number[] = [];
  let stopped = false;
  let polling = false;

  const apply = (payment: PaymentFieldsFragment | null | undefined) => {
    if (stopped || !payment) return;
    onPayment(payment);
    if (isSettled(payment)) stop();
  };

  const poll = () =>
    client
      .query({ query: PaymentQuery, variables, fetchPolicy: "no-cache" })
      .then(({ data }) => apply(data?.payment), () => undefined); // a missed poll is retried next tick

  const fallBackToPolling = () => {
    if (stopped || polling) return;
    polling = true;
    onMode("polling");
    void poll();
    timers.push(window.setInterval(poll, POLL_MS));
  };

  timers.push(
    window.setInterval(() => {
      client
        .mutate({ mutation: CheckPaymentStatusMutation, variables, fetchPolicy: "no-cache" })
        .then(({ data }) => apply(data?.checkPaymentStatus.payment), () => undefined);
    }, NUDGE_MS),
  );

  const subscription = client
    .subscribe({ query: PaymentUpdatesSubscription, variables, fetchPolicy: "no-cache" })
    .subscribe({
      next: ({ data, error }) => {
        if (error) return fallBackToPolling();
        onMode("live");
        apply(data?.paymentUpdates);
      },
      error: fallBackToPolling,
      // The server ends the stream once the payment settles; ending before that means polling instead.
      complete: fallBackToPolling,
    });

  function stop() {
    stopped = true;
    timers.forEach((timer) => window.clearInterval(timer));
    subscription.unsubscribe();
  }

  return stop;
}
