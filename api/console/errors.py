"""Error pages of the console: friendly, in the page's language, never a stack trace or an API problem document."""

from __future__ import annotations

from collections.abc import Mapping

from fastapi.responses import HTMLResponse
from starlette.requests import Request

from api.console import i18n
from api.console.i18n import marked as _
from api.console.web import CONTENT_SECURITY_POLICY, PREFIX, environment

MESSAGES = {
    400: _("The request was not understood. Go back, reload the page and try again."),
    401: _("Sign in to do this."),
    403: _("Your roles do not allow this."),
    404: _("There is no such page."),
    405: _("There is no such page."),
    413: _("What you sent is too large."),
    429: _("Too many requests. Wait a minute and try again."),
    500: _("The request failed. It has been logged; try again later."),
    503: _("The platform is not available right now. Try again later."),
}


def is_console(request: Request) -> bool:
    return request.url.path == PREFIX or request.url.path.startswith(f"{PREFIX}/")


FORGED = _("This form has expired or did not come from this site. Go back, reload the page and try again.")


def error_page(request: Request, status: int, headers: Mapping[str, str] | None = None, forged: bool = False
               ) -> HTMLResponse:  # fmt: skip
    """The page, with the console's security headers and any the error carries (Retry-After)."""
    language = i18n.language_of(request)
    gettext = i18n.translations(language).ugettext
    message = gettext(FORGED if forged else MESSAGES.get(status, MESSAGES[500] if status >= 500 else MESSAGES[404]))
    html = environment(language).get_template("error_bare.html").render(message=message, status=status)
    page_headers = {"Content-Security-Policy": CONTENT_SECURITY_POLICY, "X-Frame-Options": "DENY",
                    "Referrer-Policy": "same-origin", **(headers or {})}  # fmt: skip
    return HTMLResponse(html, status_code=status, headers=page_headers)
