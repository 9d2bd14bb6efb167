"""Schemathesis's check for the GraphQL contract, loaded through SCHEMATHESIS_HOOKS.

Schemathesis's own `not_a_server_error` counts every error a resolver raises as a server failure
unless its code is one of Apollo's client codes, so it flags a NOT_FOUND or a FORBIDDEN that the
contract asks for. This check judges by the contract's codes instead: a 5xx, a body that is not a
GraphQL answer, an error without a code or with one outside the contract (INTERNAL_SERVER_ERROR
among them) is a finding.
"""

import schemathesis

CONTRACT_CODES = {
    "UNAUTHENTICATED",
    "FORBIDDEN",
    "NOT_FOUND",
    "CONFLICT",
    "BAD_USER_INPUT",
    "GRAPHQL_VALIDATION_FAILED",
    "SERVICE_UNAVAILABLE",
}


@schemathesis.check
def graphql_contract_errors_only(
    ctx: schemathesis.CheckContext, response: schemathesis.Response, case: schemathesis.Case
) -> None:
    if response.status_code >= 500:
        raise AssertionError(f"server error {response.status_code}: {response.text[:500]}")
    body = response.json()
    if not isinstance(body, dict) or not ({"data", "errors"} & set(body)):
        raise AssertionError(f"not a GraphQL answer: {response.text[:500]}")
    for error in body.get("errors") or []:
        code = (error.get("extensions") or {}).get("code")
        if code not in CONTRACT_CODES:
            raise AssertionError(f"an error outside the contract ({code}): {error}")
