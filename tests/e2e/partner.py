"""What a partner does in the browser, shared by the journeys."""

PAGES = 11  # sections of the current instrument, one page each
SAVED = "[data-autosave-status][data-state=saved]"


def answer_page(page, start=0, stop=None, value="4", last_value=None):
    """Choose ``value`` for the questions start..stop of the page, then wait until all are saved."""
    questions = page.locator("fieldset.question")
    stop = questions.count() if stop is None else stop
    for i in range(start, stop):
        chosen = last_value if last_value and i == stop - 1 else value
        questions.nth(i).locator(f"input[type=radio][value='{chosen}']").check()
    page.locator(SAVED).wait_for()


def checked(page):
    return page.locator("fieldset.question input[type=radio]:checked").count()


def save_and_continue(page, response_id, index):
    """Post the page with its button and land on the next one (or on the review)."""
    name = "Save and continue" if index < PAGES else "Save and review"
    page.get_by_role("button", name=name).click()
    following = f"/section/{index + 1}/" if index < PAGES else "/review/"
    page.wait_for_url(f"**/respond/{response_id}{following}")


def start(page, base, token, first_name, consent=True):
    """Open the personal link, confirm who is answering and (the first time) give consent."""
    page.goto(f"{base}/a/{token}/")
    page.get_by_role("heading", name=f"You are answering as {first_name}").wait_for()
    page.get_by_role("button", name=f"I am {first_name}, continue").click()
    if consent:
        page.get_by_role("heading", name="Before you begin").wait_for()
        page.locator("input[name=share_summary][value=yes]").check()
        page.locator("input[name=understood]").check()
        page.get_by_role("button", name="Begin").click()
        page.wait_for_url("**/section/1/")
