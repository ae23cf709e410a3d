/* eslint-disable */
import * as types from './graphql';
import type { TypedDocumentNode as DocumentNode } from '@graphql-typed-document-node/core';

/**
 * Map of all GraphQL operations in the project.
 *
 * This map has several performance disadvantages:
 * 1. It is not tree-shakeable, so it will include all operations in the project.
 * 2. It is not minifiable, so the string of a GraphQL query will be multiple times inside the bundle.
 * 3. It does not support dead code elimination, so it will add unused operations.
 *
 * Therefore it is highly recommended to use the babel or swc plugin for production.
 * Learn more about it here: https://the-guild.dev/graphql/codegen/plugins/presets/preset-client#reducing-bundle-size
 */
type Documents = {
    "\n  fragment PaymentFields on Payment {\n    id\n    status\n    failureReason\n    paymentUrl\n    amount\n    currency\n    package {\n      name\n      durationMinutes\n    }\n    activation {\n      status\n      accessCode\n      lastError\n      expiresAt\n    }\n  }\n": typeof types.PaymentFieldsFragmentDoc,
    "\n  query Packages($routerId: ID!) {\n    packages(routerId: $routerId) {\n      id\n      name\n      price\n      durationMinutes\n      uploadKbps\n      downloadKbps\n      dataLimitMb\n    }\n  }\n": typeof types.PackagesDocument,
    "\n  mutation InitiatePayment($input: PaymentInput!) {\n    initiatePayment(input: $input) {\n      payment {\n        ...PaymentFields\n        clientSecret\n      }\n      errors {\n        field\n        code\n        message\n      }\n    }\n  }\n": typeof types.InitiatePaymentDocument,
    "\n  mutation CreatePaymentLink($input: PaymentInput!) {\n    createPaymentLink(input: $input) {\n      payment {\n        ...PaymentFields\n        clientSecret\n      }\n      errors {\n        field\n        code\n        message\n      }\n    }\n  }\n": typeof types.CreatePaymentLinkDocument,
    "\n  query Payment($id: UUID!, $clientSecret: String!) {\n    payment(id: $id, clientSecret: $clientSecret) {\n      ...PaymentFields\n    }\n  }\n": typeof types.PaymentDocument,
    "\n  mutation CheckPaymentStatus($id: UUID!, $clientSecret: String!) {\n    checkPaymentStatus(paymentId: $id, clientSecret: $clientSecret) {\n      payment {\n        ...PaymentFields\n      }\n      errors {\n        field\n        code\n        message\n      }\n    }\n  }\n": typeof types.CheckPaymentStatusDocument,
    "\n  subscription PaymentUpdates($id: UUID!, $clientSecret: String!) {\n    paymentUpdates(paymentId: $id, clientSecret: $clientSecret) {\n      ...PaymentFields\n    }\n  }\n": typeof types.PaymentUpdatesDocument,
};
const documents: Documents = {
    "\n  fragment PaymentFields on Payment {\n    id\n    status\n    failureReason\n    paymentUrl\n    amount\n    currency\n    package {\n      name\n      durationMinutes\n    }\n    activation {\n      status\n      accessCode\n      lastError\n      expiresAt\n    }\n  }\n": types.PaymentFieldsFragmentDoc,
    "\n  query Packages($routerId: ID!) {\n    packages(routerId: $routerId) {\n      id\n      name\n      price\n      durationMinutes\n      uploadKbps\n      downloadKbps\n      dataLimitMb\n    }\n  }\n": types.PackagesDocument,
    "\n  mutation InitiatePayment($input: PaymentInput!) {\n    initiatePayment(input: $input) {\n      payment {\n        ...PaymentFields\n        clientSecret\n      }\n      errors {\n        field\n        code\n        message\n      }\n    }\n  }\n": types.InitiatePaymentDocument,
    "\n  mutation CreatePaymentLink($input: PaymentInput!) {\n    createPaymentLink(input: $input) {\n      payment {\n        ...PaymentFields\n        clientSecret\n      }\n      errors {\n        field\n        code\n        message\n      }\n    }\n  }\n": types.CreatePaymentLinkDocument,
    "\n  query Payment($id: UUID!, $clientSecret: String!) {\n    payment(id: $id, clientSecret: $clientSecret) {\n      ...PaymentFields\n    }\n  }\n": types.PaymentDocument,
    "\n  mutation CheckPaymentStatus($id: UUID!, $clientSecret: String!) {\n    checkPaymentStatus(paymentId: $id, clientSecret: $clientSecret) {\n      payment {\n        ...PaymentFields\n      }\n      errors {\n        field\n        code\n        message\n      }\n    }\n  }\n": types.CheckPaymentStatusDocument,
    "\n  subscription PaymentUpdates($id: UUID!, $clientSecret: String!) {\n    paymentUpdates(paymentId: $id, clientSecret: $clientSecret) {\n      ...PaymentFields\n    }\n  }\n": types.PaymentUpdatesDocument,
};

/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 *
 *
 * @example
 * ```ts
 * const query = graphql(`query GetUser($id: ID!) { user(id: $id) { name } }`);
 * ```
 *
 * The query argument is unknown!
 * Please regenerate the types.
 */
export function graphql(source: string): unknown;

/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "\n  fragment PaymentFields on Payment {\n    id\n    status\n    failureReason\n    paymentUrl\n    amount\n    currency\n    package {\n      name\n      durationMinutes\n    }\n    activation {\n      status\n      accessCode\n      lastError\n      expiresAt\n    }\n  }\n"): (typeof documents)["\n  fragment PaymentFields on Payment {\n    id\n    status\n    failureReason\n    paymentUrl\n    amount\n    currency\n    package {\n      name\n      durationMinutes\n    }\n    activation {\n      status\n      accessCode\n      lastError\n      expiresAt\n    }\n  }\n"];
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "\n  query Packages($routerId: ID!) {\n    packages(routerId: $routerId) {\n      id\n      name\n      price\n      durationMinutes\n      uploadKbps\n      downloadKbps\n      dataLimitMb\n    }\n  }\n"): (typeof documents)["\n  query Packages($routerId: ID!) {\n    packages(routerId: $routerId) {\n      id\n      name\n      price\n      durationMinutes\n      uploadKbps\n      downloadKbps\n      dataLimitMb\n    }\n  }\n"];
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "\n  mutation InitiatePayment($input: PaymentInput!) {\n    initiatePayment(input: $input) {\n      payment {\n        ...PaymentFields\n        clientSecret\n      }\n      errors {\n        field\n        code\n        message\n      }\n    }\n  }\n"): (typeof documents)["\n  mutation InitiatePayment($input: PaymentInput!) {\n    initiatePayment(input: $input) {\n      payment {\n        ...PaymentFields\n        clientSecret\n      }\n      errors {\n        field\n        code\n        message\n      }\n    }\n  }\n"];
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "\n  mutation CreatePaymentLink($input: PaymentInput!) {\n    createPaymentLink(input: $input) {\n      payment {\n        ...PaymentFields\n        clientSecret\n      }\n      errors {\n        field\n        code\n        message\n      }\n    }\n  }\n"): (typeof documents)["\n  mutation CreatePaymentLink($input: PaymentInput!) {\n    createPaymentLink(input: $input) {\n      payment {\n        ...PaymentFields\n        clientSecret\n      }\n      errors {\n        field\n        code\n        message\n      }\n    }\n  }\n"];
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "\n  query Payment($id: UUID!, $clientSecret: String!) {\n    payment(id: $id, clientSecret: $clientSecret) {\n      ...PaymentFields\n    }\n  }\n"): (typeof documents)["\n  query Payment($id: UUID!, $clientSecret: String!) {\n    payment(id: $id, clientSecret: $clientSecret) {\n      ...PaymentFields\n    }\n  }\n"];
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "\n  mutation CheckPaymentStatus($id: UUID!, $clientSecret: String!) {\n    checkPaymentStatus(paymentId: $id, clientSecret: $clientSecret) {\n      payment {\n        ...PaymentFields\n      }\n      errors {\n        field\n        code\n        message\n      }\n    }\n  }\n"): (typeof documents)["\n  mutation CheckPaymentStatus($id: UUID!, $clientSecret: String!) {\n    checkPaymentStatus(paymentId: $id, clientSecret: $clientSecret) {\n      payment {\n        ...PaymentFields\n      }\n      errors {\n        field\n        code\n        message\n      }\n    }\n  }\n"];
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "\n  subscription PaymentUpdates($id: UUID!, $clientSecret: String!) {\n    paymentUpdates(paymentId: $id, clientSecret: $clientSecret) {\n      ...PaymentFields\n    }\n  }\n"): (typeof documents)["\n  subscription PaymentUpdates($id: UUID!, $clientSecret: String!) {\n    paymentUpdates(paymentId: $id, clientSecret: $clientSecret) {\n      ...PaymentFields\n    }\n  }\n"];

export function graphql(source: string) {
  return (documents as any)[source] ?? {};
}

export type DocumentType<TDocumentNode extends DocumentNode<any, any>> = TDocumentNode extends DocumentNode<  infer TType,  any>  ? TType  : never;