/* eslint-disable */
/** Internal type. DO NOT USE DIRECTLY. */
type Exact<T extends { [key: string]: unknown }> = { [K in keyof T]: T[K] };
/** Internal type. DO NOT USE DIRECTLY. */
export type Incremental<T> = T | { [P in keyof T]?: P extends ' $fragmentName' | '__typename' ? T[P] : never };
import type { TypedDocumentNode as DocumentNode } from '@graphql-typed-document-node/core';
/** Where a customer's access grant stands on the router */
export type ActivationStatus =
  /** Online: the access code works until `expiresAt` */
  | 'ACTIVE'
  /** The time is over and the router has taken the user off */
  | 'EXPIRED'
  /** Every attempt to reach the router failed (`lastError` says why). Retried by itself once the router answers again; operators can retryActivation */
  | 'FAILED'
  /** Not on the router yet: the server is putting the customer online (retrying if needed) */
  | 'PENDING'
  /** Ended early by the operator: the access code no longer logs anyone in */
  | 'REVOKED';

/** Every error code the server emits, in a payload's `errors[].code` or a top-level error's `extensions.code`. Stable: branch on the code, show the message. */
export type ErrorCode =
  /** No such activation among the operator's. Reload the list. */
  | 'ACTIVATION_NOT_FOUND'
  /** retryActivation on an activation that is not FAILED (or a payment that has none yet). Nothing to do: read its current status. */
  | 'ACTIVATION_NOT_RETRYABLE'
  /** `amount` differs from the package's price; the message gives the price (e.g. `Amount must match package price: 25.00 KES`). Reload `packages` and send the package's `price`. */
  | 'AMOUNT_MISMATCH'
  /** Sign-in refused: wrong username or password, or an invalid, expired or retired refresh token. Ask the operator to sign in again. */
  | 'AUTHENTICATION_FAILED'
  /** The code is known but its time is over. Offer the customer a new package. */
  | 'CODE_EXPIRED'
  /** The code is unknown, revoked or not for this router (one answer for all, by design). Ask the customer to check the code they typed. */
  | 'CODE_INVALID'
  /** Stored credentials could not be decrypted (the server's encryption key changed). Operators: add the credentials again. Portals: show the support line. */
  | 'DECRYPTION_FAILED'
  /** Every device slot of this code is in use (the package's `sharedUsers`). Log another device off first, or buy a package for this device. */
  | 'DEVICE_LIMIT_REACHED'
  /** IntaSend refused the request. The payment is kept (FAILED, with `failureReason`) and returned in the payload. The customer may try again; an operator should check their credentials. */
  | 'GATEWAY_ERROR'
  /** IntaSend did not answer usably (timeout, 5xx, garbage). A push whose answer never came may still reach the phone: the payment in the payload stays PROCESSING until the server settles it. Follow it (paymentUpdates or checkPaymentStatus) rather than paying again. */
  | 'GATEWAY_UNAVAILABLE'
  /** This idempotencyKey was used before with different input. Use a fresh key for a new payment; replay a key only with the exact same input. */
  | 'IDEMPOTENCY_MISMATCH'
  /** Top-level error: something unexpected failed on the server (message: `Internal server error`); it is logged there. Retry later; for payments, read the payment's status before paying again. */
  | 'INTERNAL'
  /** IntaSend rejected the API keys being added; nothing was stored. Copy the publishable and secret keys again from the IntaSend dashboard (right environment: SANDBOX or LIVE). */
  | 'INVALID_CREDENTIALS'
  /** An input value is missing, malformed or out of range; `field` names it and the message says why. A mutation reports every invalid field at once. Fix them and send again. Also top-level for a negative `pagination.offset` or an unreadable request body. */
  | 'INVALID_INPUT'
  /** `ipAddress` is not an IPv4 or IPv6 address. Send the hotspot's `$(ip)` unchanged, or leave it out where it is optional. */
  | 'INVALID_IP'
  /** `macAddress` is not a MAC address (six hex pairs separated by `:` or `-`). Send the hotspot's `$(mac)` unchanged, or leave it out where it is optional. */
  | 'INVALID_MAC'
  /** Not a Kenyan mobile number. Accepted: 0712345678, 712345678, +254712345678, 254712345678 (and 01… numbers). Ask the customer to correct it. */
  | 'INVALID_PHONE'
  /** checkPaymentStatus on a payment not initiated through IntaSend: there is no gateway to ask. Read the payment with `payment` instead. */
  | 'NOT_INTASEND_PAYMENT'
  /** The operator has no active IntaSend credentials, so no payment can be taken. Operators: add them with addPaymentCredential. Portals: the customer cannot fix this; show the support line. */
  | 'NO_CREDENTIALS'
  /** No such package on that router, or it is not active (message: `Package not found or not active for this router`). Reload `packages(routerId)` and let the customer choose again. */
  | 'PACKAGE_NOT_FOUND'
  /** A push to this phone on this router is still in progress (under 2 minutes old, 5 when its outcome is unknown). No payment is returned: wait for the customer to answer the prompt, or replay your own idempotencyKey to get yours back. */
  | 'PAYMENT_ALREADY_PENDING'
  /** No such payment among the caller's; for X-Public-Key callers also a missing or wrong `clientSecret` (message: `Payment not found or access denied`). Send the id and clientSecret that initiatePayment/createPaymentLink returned. */
  | 'PAYMENT_NOT_FOUND'
  /** Automatic persisted queries: the server does not know this query's hash. Send the same request again with the full query text (Apollo's client does this by itself). */
  | 'PERSISTED_QUERY_NOT_FOUND'
  /** Too many attempts from this caller, phone, address or operator in a short time (payments, sign-ins, status checks, router checks, code redemptions, subscriptions). Wait a minute and try again; a portal can fall back to polling less often. */
  | 'RATE_LIMITED'
  /** The router's host resolves to an address the server may not connect to (loopback, link-local, multicast, or a network the installation denies). Use the router's real address. */
  | 'ROUTER_NOT_ALLOWED'
  /** No such router among the caller's (someone else's router is reported the same way). Check `routerId`; a portal's configuration points at the wrong router. */
  | 'ROUTER_NOT_FOUND'
  /** The router's API did not answer (unreachable, refused, timed out). Check the router's address, port and that it is online; activations are retried by themselves. */
  | 'ROUTER_UNREACHABLE'
  /** A server dependency (cache or queue) is down for a moment; nothing was done. Try again shortly. */
  | 'SERVICE_UNAVAILABLE'
  /** Top-level error: missing or invalid credentials for an operation that needs them, or an operator token that expired during a subscription. Send `Authorization: Bearer <accessToken>` (refresh it with refreshToken) or, where allowed, the portal's `X-Public-Key`. */
  | 'UNAUTHENTICATED'
  /** No such voucher among the operator's. Reload the voucher batch. */
  | 'VOUCHER_NOT_FOUND';

/** What a customer pays for, for initiatePayment and createPaymentLink */
export type PaymentInput = {
  /** In KES, exactly the package's price (`25`, `25.0` and `25.00` are the same); else AMOUNT_MISMATCH */
  amount: string;
  /** Optional; send one to retry safely. Same key + same input → the same payment (with its clientSecret), no second push; same key + different input → IDEMPOTENCY_MISMATCH. At most 128 characters; from X-Public-Key callers at least 32 random characters (e.g. a UUID4 without dashes), else INVALID_INPUT */
  idempotencyKey?: string | null | undefined;
  /** The device's IPv4 or IPv6 address as the hotspot gives it; optional, else INVALID_IP */
  ipAddress?: string | null | undefined;
  /** The device's MAC as the hotspot gives it: `AA:BB:CC:DD:EE:FF`, `aa-bb-cc-dd-ee-ff` or `AABBCCDDEEFF`; optional, else INVALID_MAC */
  macAddress?: string | null | undefined;
  /** An active package on that router (Package.id), else PACKAGE_NOT_FOUND */
  packageId: string | number;
  /** `mpesa` (default); createPaymentLink also accepts `card`. Anything else: INVALID_INPUT */
  paymentMethod?: string;
  /** The M-Pesa number to charge: a Kenyan mobile number in any usual form: `0712345678`, `712345678`, `+254712345678`, `254712345678` or the `01…` range (spaces and dashes allowed); else INVALID_PHONE. Stored as `2547XXXXXXXX`. Required for initiatePayment; may be empty for createPaymentLink */
  phoneNumber: string;
  /** Optional: an ACTIVE access code on this router to extend, when buying the same package again (else CODE_INVALID). Without it the payment makes a new grant with its own code */
  renewCode?: string | null | undefined;
  /** The router (Router.id) the customer is on; must belong to the caller (else ROUTER_NOT_FOUND) */
  routerId: string | number;
};

/** Where a payment stands. COMPLETED and FAILED are final: nothing moves a payment out */
export type PaymentStatus =
  /** Paid: `completedAt` and `packageExpiryTime` are set and activation has started */
  | 'COMPLETED'
  /** Not paid (cancelled, timed out, refused by the gateway): see `failureReason` */
  | 'FAILED'
  /** Recorded, not yet taken up by the gateway: an STK push being sent, or a checkout link not yet paid */
  | 'PENDING'
  /** The M-Pesa prompt is on the customer's phone, or IntaSend has not settled the payment yet */
  | 'PROCESSING';

export type PaymentFieldsFragment = { id: string, status: PaymentStatus, failureReason: string | null, paymentUrl: string | null, amount: string, currency: string, package: { name: string, durationMinutes: number }, activation: { status: ActivationStatus, accessCode: string | null, lastError: string | null, expiresAt: string | null } | null };

export type PackagesQueryVariables = Exact<{
  routerId: string | number;
}>;


export type PackagesQuery = { packages: Array<{ id: string, name: string, price: string, durationMinutes: number, uploadKbps: number | null, downloadKbps: number | null, dataLimitMb: number | null }> };

export type InitiatePaymentMutationVariables = Exact<{
  input: PaymentInput;
}>;


export type InitiatePaymentMutation = { initiatePayment: { payment: { clientSecret: string | null, id: string, status: PaymentStatus, failureReason: string | null, paymentUrl: string | null, amount: string, currency: string, package: { name: string, durationMinutes: number }, activation: { status: ActivationStatus, accessCode: string | null, lastError: string | null, expiresAt: string | null } | null } | null, errors: Array<{ field: string | null, code: ErrorCode, message: string }> } };

export type CreatePaymentLinkMutationVariables = Exact<{
  input: PaymentInput;
}>;


export type CreatePaymentLinkMutation = { createPaymentLink: { payment: { clientSecret: string | null, id: string, status: PaymentStatus, failureReason: string | null, paymentUrl: string | null, amount: string, currency: string, package: { name: string, durationMinutes: number }, activation: { status: ActivationStatus, accessCode: string | null, lastError: string | null, expiresAt: string | null } | null } | null, errors: Array<{ field: string | null, code: ErrorCode, message: string }> } };

export type PaymentQueryVariables = Exact<{
  id: string;
  clientSecret: string;
}>;


export type PaymentQuery = { payment: { id: string, status: PaymentStatus, failureReason: string | null, paymentUrl: string | null, amount: string, currency: string, package: { name: string, durationMinutes: number }, activation: { status: ActivationStatus, accessCode: string | null, lastError: string | null, expiresAt: string | null } | null } | null };

export type CheckPaymentStatusMutationVariables = Exact<{
  id: string;
  clientSecret: string;
}>;


export type CheckPaymentStatusMutation = { checkPaymentStatus: { payment: { id: string, status: PaymentStatus, failureReason: string | null, paymentUrl: string | null, amount: string, currency: string, package: { name: string, durationMinutes: number }, activation: { status: ActivationStatus, accessCode: string | null, lastError: string | null, expiresAt: string | null } | null } | null, errors: Array<{ field: string | null, code: ErrorCode, message: string }> } };

export type PaymentUpdatesSubscriptionVariables = Exact<{
  id: string;
  clientSecret: string;
}>;


export type PaymentUpdatesSubscription = { paymentUpdates: { id: string, status: PaymentStatus, failureReason: string | null, paymentUrl: string | null, amount: string, currency: string, package: { name: string, durationMinutes: number }, activation: { status: ActivationStatus, accessCode: string | null, lastError: string | null, expiresAt: string | null } | null } };

export const PaymentFieldsFragmentDoc = {"kind":"Document","definitions":[{"kind":"FragmentDefinition","name":{"kind":"Name","value":"PaymentFields"},"typeCondition":{"kind":"NamedType","name":{"kind":"Name","value":"Payment"}},"selectionSet":{"kind":"SelectionSet","selections":[{"kind":"Field","name":{"kind":"Name","value":"id"}},{"kind":"Field","name":{"kind":"Name","value":"status"}},{"kind":"Field","name":{"kind":"Name","value":"failureReason"}},{"kind":"Field","name":{"kind":"Name","value":"paymentUrl"}},{"kind":"Field","name":{"kind":"Name","value":"amount"}},{"kind":"Field","name":{"kind":"Name","value":"currency"}},{"kind":"Field","name":{"kind":"Name","value":"package"},"selectionSet":{"kind":"SelectionSet","selections":[{"kind":"Field","name":{"kind":"Name","value":"name"}},{"kind":"Field","name":{"kind":"Name","value":"durationMinutes"}}]}},{"kind":"Field","name":{"kind":"Name","value":"activation"},"selectionSet":{"kind":"SelectionSet","selections":[{"kind":"Field","name":{"kind":"Name","value":"status"}},{"kind":"Field","name":{"kind":"Name","value":"accessCode"}},{"kind":"Field","name":{"kind":"Name","value":"lastError"}},{"kind":"Field","name":{"kind":"Name","value":"expiresAt"}}]}}]}}]} as unknown as DocumentNode<PaymentFieldsFragment, unknown>;
export const PackagesDocument = {"kind":"Document","definitions":[{"kind":"OperationDefinition","operation":"query","name":{"kind":"Name","value":"Packages"},"variableDefinitions":[{"kind":"VariableDefinition","variable":{"kind":"Variable","name":{"kind":"Name","value":"routerId"}},"type":{"kind":"NonNullType","type":{"kind":"NamedType","name":{"kind":"Name","value":"ID"}}}}],"selectionSet":{"kind":"SelectionSet","selections":[{"kind":"Field","name":{"kind":"Name","value":"packages"},"arguments":[{"kind":"Argument","name":{"kind":"Name","value":"routerId"},"value":{"kind":"Variable","name":{"kind":"Name","value":"routerId"}}}],"selectionSet":{"kind":"SelectionSet","selections":[{"kind":"Field","name":{"kind":"Name","value":"id"}},{"kind":"Field","name":{"kind":"Name","value":"name"}},{"kind":"Field","name":{"kind":"Name","value":"price"}},{"kind":"Field","name":{"kind":"Name","value":"durationMinutes"}},{"kind":"Field","name":{"kind":"Name","value":"uploadKbps"}},{"kind":"Field","name":{"kind":"Name","value":"downloadKbps"}},{"kind":"Field","name":{"kind":"Name","value":"dataLimitMb"}}]}}]}}]} as unknown as DocumentNode<PackagesQuery, PackagesQueryVariables>;
export const InitiatePaymentDocument = {"kind":"Document","definitions":[{"kind":"OperationDefinition","operation":"mutation","name":{"kind":"Name","value":"InitiatePayment"},"variableDefinitions":[{"kind":"VariableDefinition","variable":{"kind":"Variable","name":{"kind":"Name","value":"input"}},"type":{"kind":"NonNullType","type":{"kind":"NamedType","name":{"kind":"Name","value":"PaymentInput"}}}}],"selectionSet":{"kind":"SelectionSet","selections":[{"kind":"Field","name":{"kind":"Name","value":"initiatePayment"},"arguments":[{"kind":"Argument","name":{"kind":"Name","value":"input"},"value":{"kind":"Variable","name":{"kind":"Name","value":"input"}}}],"selectionSet":{"kind":"SelectionSet","selections":[{"kind":"Field","name":{"kind":"Name","value":"payment"},"selectionSet":{"kind":"SelectionSet","selections":[{"kind":"FragmentSpread","name":{"kind":"Name","value":"PaymentFields"}},{"kind":"Field","name":{"kind":"Name","value":"clientSecret"}}]}},{"kind":"Field","name":{"kind":"Name","value":"errors"},"selectionSet":{"kind":"SelectionSet","selections":[{"kind":"Field","name":{"kind":"Name","value":"field"}},{"kind":"Field","name":{"kind":"Name","value":"code"}},{"kind":"Field","name":{"kind":"Name","value":"message"}}]}}]}}]}},{"kind":"FragmentDefinition","name":{"kind":"Name","value":"PaymentFields"},"typeCondition":{"kind":"NamedType","name":{"kind":"Name","value":"Payment"}},"selectionSet":{"kind":"SelectionSet","selections":[{"kind":"Field","name":{"kind":"Name","value":"id"}},{"kind":"Field","name":{"kind":"Name","value":"status"}},{"kind":"Field","name":{"kind":"Name","value":"failureReason"}},{"kind":"Field","name":{"kind":"Name","value":"paymentUrl"}},{"kind":"Field","name":{"kind":"Name","value":"amount"}},{"kind":"Field","name":{"kind":"Name","value":"currency"}},{"kind":"Field","name":{"kind":"Name","value":"package"},"selectionSet":{"kind":"SelectionSet","selections":[{"kind":"Field","name":{"kind":"Name","value":"name"}},{"kind":"Field","name":{"kind":"Name","value":"durationMinutes"}}]}},{"kind":"Field","name":{"kind":"Name","value":"activation"},"selectionSet":{"kind":"SelectionSet","selections":[{"kind":"Field","name":{"kind":"Name","value":"status"}},{"kind":"Field","name":{"kind":"Name","value":"accessCode"}},{"kind":"Field","name":{"kind":"Name","value":"lastError"}},{"kind":"Field","name":{"kind":"Name","value":"expiresAt"}}]}}]}}]} as unknown as DocumentNode<InitiatePaymentMutation, InitiatePaymentMutationVariables>;
export const CreatePaymentLinkDocument = {"kind":"Document","definitions":[{"kind":"OperationDefinition","operation":"mutation","name":{"kind":"Name","value":"CreatePaymentLink"},"variableDefinitions":[{"kind":"VariableDefinition","variable":{"kind":"Variable","name":{"kind":"Name","value":"input"}},"type":{"kind":"NonNullType","type":{"kind":"NamedType","name":{"kind":"Name","value":"PaymentInput"}}}}],"selectionSet":{"kind":"SelectionSet","selections":[{"kind":"Field","name":{"kind":"Name","value":"createPaymentLink"},"arguments":[{"kind":"Argument","name":{"kind":"Name","value":"input"},"value":{"kind":"Variable","name":{"kind":"Name","value":"input"}}}],"selectionSet":{"kind":"SelectionSet","selections":[{"kind":"Field","name":{"kind":"Name","value":"payment"},"selectionSet":{"kind":"SelectionSet","selections":[{"kind":"FragmentSpread","name":{"kind":"Name","value":"PaymentFields"}},{"kind":"Field","name":{"kind":"Name","value":"clientSecret"}}]}},{"kind":"Field","name":{"kind":"Name","value":"errors"},"selectionSet":{"kind":"SelectionSet","selections":[{"kind":"Field","name":{"kind":"Name","value":"field"}},{"kind":"Field","name":{"kind":"Name","value":"code"}},{"kind":"Field","name":{"kind":"Name","value":"message"}}]}}]}}]}},{"kind":"FragmentDefinition","name":{"kind":"Name","value":"PaymentFields"},"typeCondition":{"kind":"NamedType","name":{"kind":"Name","value":"Payment"}},"selectionSet":{"kind":"SelectionSet","selections":[{"kind":"Field","name":{"kind":"Name","value":"id"}},{"kind":"Field","name":{"kind":"Name","value":"status"}},{"kind":"Field","name":{"kind":"Name","value":"failureReason"}},{"kind":"Field","name":{"kind":"Name","value":"paymentUrl"}},{"kind":"Field","name":{"kind":"Name","value":"amount"}},{"kind":"Field","name":{"kind":"Name","value":"currency"}},{"kind":"Field","name":{"kind":"Name","value":"package"},"selectionSet":{"kind":"SelectionSet","selections":[{"kind":"Field","name":{"kind":"Name","value":"name"}},{"kind":"Field","name":{"kind":"Name","value":"durationMinutes"}}]}},{"kind":"Field","name":{"kind":"Name","value":"activation"},"selectionSet":{"kind":"SelectionSet","selections":[{"kind":"Field","name":{"kind":"Name","value":"status"}},{"kind":"Field","name":{"kind":"Name","value":"accessCode"}},{"kind":"Field","name":{"kind":"Name","value":"lastError"}},{"kind":"Field","name":{"kind":"Name","value":"expiresAt"}}]}}]}}]} as unknown as DocumentNode<CreatePaymentLinkMutation, CreatePaymentLinkMutationVariables>;
export const PaymentDocument = {"kind":"Document","definitions":[{"kind":"OperationDefinition","operation":"query","name":{"kind":"Name","value":"Payment"},"variableDefinitions":[{"kind":"VariableDefinition","variable":{"kind":"Variable","name":{"kind":"Name","value":"id"}},"type":{"kind":"NonNullType","type":{"kind":"NamedType","name":{"kind":"Name","value":"UUID"}}}},{"kind":"VariableDefinition","variable":{"kind":"Variable","name":{"kind":"Name","value":"clientSecret"}},"type":{"kind":"NonNullType","type":{"kind":"NamedType","name":{"kind":"Name","value":"String"}}}}],"selectionSet":{"kind":"SelectionSet","selections":[{"kind":"Field","name":{"kind":"Name","value":"payment"},"arguments":[{"kind":"Argument","name":{"kind":"Name","value":"id"},"value":{"kind":"Variable","name":{"kind":"Name","value":"id"}}},{"kind":"Argument","name":{"kind":"Name","value":"clientSecret"},"value":{"kind":"Variable","name":{"kind":"Name","value":"clientSecret"}}}],"selectionSet":{"kind":"SelectionSet","selections":[{"kind":"FragmentSpread","name":{"kind":"Name","value":"PaymentFields"}}]}}]}},{"kind":"FragmentDefinition","name":{"kind":"Name","value":"PaymentFields"},"typeCondition":{"kind":"NamedType","name":{"kind":"Name","value":"Payment"}},"selectionSet":{"kind":"SelectionSet","selections":[{"kind":"Field","name":{"kind":"Name","value":"id"}},{"kind":"Field","name":{"kind":"Name","value":"status"}},{"kind":"Field","name":{"kind":"Name","value":"failureReason"}},{"kind":"Field","name":{"kind":"Name","value":"paymentUrl"}},{"kind":"Field","name":{"kind":"Name","value":"amount"}},{"kind":"Field","name":{"kind":"Name","value":"currency"}},{"kind":"Field","name":{"kind":"Name","value":"package"},"selectionSet":{"kind":"SelectionSet","selections":[{"kind":"Field","name":{"kind":"Name","value":"name"}},{"kind":"Field","name":{"kind":"Name","value":"durationMinutes"}}]}},{"kind":"Field","name":{"kind":"Name","value":"activation"},"selectionSet":{"kind":"SelectionSet","selections":[{"kind":"Field","name":{"kind":"Name","value":"status"}},{"kind":"Field","name":{"kind":"Name","value":"accessCode"}},{"kind":"Field","name":{"kind":"Name","value":"lastError"}},{"kind":"Field","name":{"kind":"Name","value":"expiresAt"}}]}}]}}]} as unknown as DocumentNode<PaymentQuery, PaymentQueryVariables>;
export const CheckPaymentStatusDocument = {"kind":"Document","definitions":[{"kind":"OperationDefinition","operation":"mutation","name":{"kind":"Name","value":"CheckPaymentStatus"},"variableDefinitions":[{"kind":"VariableDefinition","variable":{"kind":"Variable","name":{"kind":"Name","value":"id"}},"type":{"kind":"NonNullType","type":{"kind":"NamedType","name":{"kind":"Name","value":"UUID"}}}},{"kind":"VariableDefinition","variable":{"kind":"Variable","name":{"kind":"Name","value":"clientSecret"}},"type":{"kind":"NonNullType","type":{"kind":"NamedType","name":{"kind":"Name","value":"String"}}}}],"selectionSet":{"kind":"SelectionSet","selections":[{"kind":"Field","name":{"kind":"Name","value":"checkPaymentStatus"},"arguments":[{"kind":"Argument","name":{"kind":"Name","value":"paymentId"},"value":{"kind":"Variable","name":{"kind":"Name","value":"id"}}},{"kind":"Argument","name":{"kind":"Name","value":"clientSecret"},"value":{"kind":"Variable","name":{"kind":"Name","value":"clientSecret"}}}],"selectionSet":{"kind":"SelectionSet","selections":[{"kind":"Field","name":{"kind":"Name","value":"payment"},"selectionSet":{"kind":"SelectionSet","selections":[{"kind":"FragmentSpread","name":{"kind":"Name","value":"PaymentFields"}}]}},{"kind":"Field","name":{"kind":"Name","value":"errors"},"selectionSet":{"kind":"SelectionSet","selections":[{"kind":"Field","name":{"kind":"Name","value":"field"}},{"kind":"Field","name":{"kind":"Name","value":"code"}},{"kind":"Field","name":{"kind":"Name","value":"message"}}]}}]}}]}},{"kind":"FragmentDefinition","name":{"kind":"Name","value":"PaymentFields"},"typeCondition":{"kind":"NamedType","name":{"kind":"Name","value":"Payment"}},"selectionSet":{"kind":"SelectionSet","selections":[{"kind":"Field","name":{"kind":"Name","value":"id"}},{"kind":"Field","name":{"kind":"Name","value":"status"}},{"kind":"Field","name":{"kind":"Name","value":"failureReason"}},{"kind":"Field","name":{"kind":"Name","value":"paymentUrl"}},{"kind":"Field","name":{"kind":"Name","value":"amount"}},{"kind":"Field","name":{"kind":"Name","value":"currency"}},{"kind":"Field","name":{"kind":"Name","value":"package"},"selectionSet":{"kind":"SelectionSet","selections":[{"kind":"Field","name":{"kind":"Name","value":"name"}},{"kind":"Field","name":{"kind":"Name","value":"durationMinutes"}}]}},{"kind":"Field","name":{"kind":"Name","value":"activation"},"selectionSet":{"kind":"SelectionSet","selections":[{"kind":"Field","name":{"kind":"Name","value":"status"}},{"kind":"Field","name":{"kind":"Name","value":"accessCode"}},{"kind":"Field","name":{"kind":"Name","value":"lastError"}},{"kind":"Field","name":{"kind":"Name","value":"expiresAt"}}]}}]}}]} as unknown as DocumentNode<CheckPaymentStatusMutation, CheckPaymentStatusMutationVariables>;
export const PaymentUpdatesDocument = {"kind":"Document","definitions":[{"kind":"OperationDefinition","operation":"subscription","name":{"kind":"Name","value":"PaymentUpdates"},"variableDefinitions":[{"kind":"VariableDefinition","variable":{"kind":"Variable","name":{"kind":"Name","value":"id"}},"type":{"kind":"NonNullType","type":{"kind":"NamedType","name":{"kind":"Name","value":"UUID"}}}},{"kind":"VariableDefinition","variable":{"kind":"Variable","name":{"kind":"Name","value":"clientSecret"}},"type":{"kind":"NonNullType","type":{"kind":"NamedType","name":{"kind":"Name","value":"String"}}}}],"selectionSet":{"kind":"SelectionSet","selections":[{"kind":"Field","name":{"kind":"Name","value":"paymentUpdates"},"arguments":[{"kind":"Argument","name":{"kind":"Name","value":"paymentId"},"value":{"kind":"Variable","name":{"kind":"Name","value":"id"}}},{"kind":"Argument","name":{"kind":"Name","value":"clientSecret"},"value":{"kind":"Variable","name":{"kind":"Name","value":"clientSecret"}}}],"selectionSet":{"kind":"SelectionSet","selections":[{"kind":"FragmentSpread","name":{"kind":"Name","value":"PaymentFields"}}]}}]}},{"kind":"FragmentDefinition","name":{"kind":"Name","value":"PaymentFields"},"typeCondition":{"kind":"NamedType","name":{"kind":"Name","value":"Payment"}},"selectionSet":{"kind":"SelectionSet","selections":[{"kind":"Field","name":{"kind":"Name","value":"id"}},{"kind":"Field","name":{"kind":"Name","value":"status"}},{"kind":"Field","name":{"kind":"Name","value":"failureReason"}},{"kind":"Field","name":{"kind":"Name","value":"paymentUrl"}},{"kind":"Field","name":{"kind":"Name","value":"amount"}},{"kind":"Field","name":{"kind":"Name","value":"currency"}},{"kind":"Field","name":{"kind":"Name","value":"package"},"selectionSet":{"kind":"SelectionSet","selections":[{"kind":"Field","name":{"kind":"Name","value":"name"}},{"kind":"Field","name":{"kind":"Name","value":"durationMinutes"}}]}},{"kind":"Field","name":{"kind":"Name","value":"activation"},"selectionSet":{"kind":"SelectionSet","selections":[{"kind":"Field","name":{"kind":"Name","value":"status"}},{"kind":"Field","name":{"kind":"Name","value":"accessCode"}},{"kind":"Field","name":{"kind":"Name","value":"lastError"}},{"kind":"Field","name":{"kind":"Name","value":"expiresAt"}}]}}]}}]} as unknown as DocumentNode<PaymentUpdatesSubscription, PaymentUpdatesSubscriptionVariables>;