"""``/approvals/link/<token>/``: a notification's signed, single-use, expiring link to an
approval page (docs/notifications.md#approval-links)."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render

from approvals.links import LinkRefused, approval_link_read, approval_link_use
from approvals.selectors import approval_by_id
from execution import policy
from execution.pages.access import page_require


@login_required  # an anonymous visitor logs in first and comes back here (?next=)
def approval_link_open(request: HttpRequest, token: str) -> HttpResponse:
    try:
        link = approval_link_read(token)
        # A link mailed to one approver opens for that approver only: anyone else gets the
        # 404 of a link that is not theirs, and spends nothing.
        if link.user_id is not None and link.user_id != request.user.pk:
            raise Http404("this link was sent to someone else")
        approval = approval_by_id(link.approval_id)
        if approval is None:
            raise Http404("no such approval")
        # The right first (another tenant's user: 404, as the page answers), so a user who
        # may not see the approval does not spend the link of one who may.
        page_require(request, policy.Right.READ, what="approval", execution=approval.execution)
        approval_link_use(approval_id=link.approval_id, nonce=link.nonce, user=request.user)
    except LinkRefused as refused:
        return render(
            request, "approvals/link_refused.html", {"reason": refused.reason}, status=refused.status
        )
    return redirect("approvals:detail", approval_id=approval.approval_id)
