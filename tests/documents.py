"""GraphQL documents the tests send, written once."""

PAYMENT_FIELDS = """
  id status phoneNumber amount currency paymentMethod paymentProvider
  intasendPaymentId intasendInvoiceId intasendState paymentUrl failureReason
  macAddress ipAddress packageExpiryTime completedAt createdAt updatedAt clientSecret
  router { id name } package { id name price }
  activation { status accessCode attempts lastError activatedAt expiresAt }
"""

INITIATE = (
    "mutation($input: PaymentInput!) { initiatePayment(input: $input) {"
    " message intasend { paymentId invoiceId state message }"
    " errors { field code message } payment {" + PAYMENT_FIELDS + "} } }"
)

CREATE_LINK = (
    "mutation($input: PaymentInput!) { createPaymentLink(input: $input) {"
    " message intasend { paymentUrl invoiceId state }"
    " errors { field code message } payment {" + PAYMENT_FIELDS + "} } }"
)

CHECK_STATUS = (
    "mutation($id: UUID!, $secret: String) { checkPaymentStatus(paymentId: $id, clientSecret: $secret) {"
    " message status state details { amount currency provider mpesaReference }"
    " errors { field code message } payment {" + PAYMENT_FIELDS + "} } }"
)

PAYMENT = "query($id: UUID!, $secret: String) { payment(id: $id, clientSecret: $secret) {" + PAYMENT_FIELDS + "} }"

PAYMENTS = """
query($filters: PaymentFilter, $pagination: OffsetPaginationInput) {
  payments(filters: $filters, pagination: $pagination) {
    totalCount results { id status phoneNumber router { id name } package { id name price }
                         activation { status } }
  }
}
"""
