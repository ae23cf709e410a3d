import { CombinedGraphQLErrors } from "@apollo/client";
import type { ErrorCode } from "./gql/graphql";

/** One problem to show: a payload's UserError, a top-level GraphQL error, or the network. */
export interface Problem {
  code: ErrorCode | "NETWORK" | null;
  field?: string | null;
  message: string;
}

// What a customer is told for each code the portal operations can return (the built-in portal's wording).
const MESSAGES: Partial<Record<ErrorCode | "NETWORK", string>> = {
  INVALID_INPUT: "Something in the form is not right. Please check it and try again.",
  INVALID_PHONE: "Enter a Safaricom/Airtel number like 0712 345 678.",
  INVALID_MAC: "The hotspot did not identify your device. Reconnect to the WiFi and open this page again.",
  INVALID_IP: "The hotspot gave your device an unexpected address. Reconnect to the WiFi and try again.",
  AMOUNT_MISMATCH: "The price of this package has just changed. Check the new price and try again.",
  ROUTER_NOT_FOUND: "This hotspot is not set up for payments. Please tell the hotspot owner.",
  PACKAGE_NOT_FOUND: "That package is no longer on sale. Please choose another one.",
  PAYMENT_NOT_FOUND: "We could not find your payment. Please start again.",
  NO_CREDENTIALS: "Payments are not set up on this hotspot yet. Please tell the hotspot owner.",
  GATEWAY_ERROR: "The payment service turned the request down. Please try again in a moment.",
  GATEWAY_UNAVAILABLE: "The payment service is not answering. Please try again in a moment.",
  DECRYPTION_FAILED: "Payments on this hotspot need to be set up again. Please tell the hotspot owner.",
  RATE_LIMITED: "Too many attempts. Please wait a few minutes and try again.",
  PAYMENT_ALREADY_PENDING: "A payment request is already waiting on your phone. Enter your M-Pesa PIN there.",
  IDEMPOTENCY_MISMATCH: "Your last attempt changed while it was being sent. Please try again.",
  AUTHENTICATION_FAILED: "This hotspot's payment page is out of date. Please reconnect to the WiFi.",
  ROUTER_UNREACHABLE: "The hotspot is not reachable right now. Your payment is safe; please try again shortly.",
  SERVICE_UNAVAILABLE: "The payment server is busy. Please try again in a moment.",
  NETWORK: "No connection to the payment server. Check that you are on the WiFi and try again.",
};

export function describe(problem: Problem): string {
  return (problem.code && MESSAGES[problem.code]) || problem.message;
}

/** The problems behind a failed Apollo call: each top-level GraphQL error, or the network. */
export function problemsOf(error: unknown): Problem[] {
  if (CombinedGraphQLErrors.is(error)) {
    return error.errors.map((e) => ({
      code: (e.extensions?.code as ErrorCode | undefined) ?? null,
      message: e.message,
    }));
  }
  return [{ code: "NETWORK", message: "No connection to the payment server." }];
}
