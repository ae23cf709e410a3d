import { graphql } from "./gql";

// What the portal shows of a payment; the same selection for every read, so every answer renders alike.
export const PaymentFields = graphql(`
  fragment PaymentFields on Payment {
    id
    status
    failureReason
    paymentUrl
    amount
    currency
    package {
      name
      durationMinutes
    }
    activation {
      status
      accessCode
      lastError
      expiresAt
    }
  }
`);

export const PackagesQuery = graphql(`
  query Packages($routerId: ID!) {
    packages(routerId: $routerId) {
      id
      name
      price
      durationMinutes
      uploadKbps
      downloadKbps
      dataLimitMb
    }
  }
`);

export const InitiatePaymentMutation = graphql(`
  mutation InitiatePayment($input: PaymentInput!) {
    initiatePayment(input: $input) {
      payment {
        ...PaymentFields
        clientSecret
      }
      errors {
        field
        code
        message
      }
    }
  }
`);

export const CreatePaymentLinkMutation = graphql(`
  mutation CreatePaymentLink($input: PaymentInput!) {
    createPaymentLink(input: $input) {
      payment {
        ...PaymentFields
        clientSecret
      }
      errors {
        field
        code
        message
      }
    }
  }
`);

// Every read of one payment carries its clientSecret: the public key alone proves nothing.
export const PaymentQuery = graphql(`
  query Payment($id: UUID!, $clientSecret: String!) {
    payment(id: $id, clientSecret: $clientSecret) {
      ...PaymentFields
    }
  }
`);

export const CheckPaymentStatusMutation = graphql(`
  mutation CheckPaymentStatus($id: UUID!, $clientSecret: String!) {
    checkPaymentStatus(paymentId: $id, clientSecret: $clientSecret) {
      payment {
        ...PaymentFields
      }
      errors {
        field
        code
        message
      }
    }
  }
`);

export const PaymentUpdatesSubscription = graphql(`
  subscription PaymentUpdates($id: UUID!, $clientSecret: String!) {
    paymentUpdates(paymentId: $id, clientSecret: $clientSecret) {
      ...PaymentFields
    }
  }
`);
