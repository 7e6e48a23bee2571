"""chronopype_testing: virtual asyncio time and fakes for testing chronopype processors."""
