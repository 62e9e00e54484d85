"""Value pools of the SolarKnock sandbox data: enums, plain values and awkward ones (unicode,
emoji, quotes, newlines, commas, SQL-ish and very long text, empty strings, nulls), hostile
attachment file names, and real county FIPS codes."""

KNOCK_STATUSES = (
    "not_home",
    "not_interested",
    "interested",
    "callback",
    "lead",
    "appointment_set",
    "do_not_knock",
    "renter",
)
LEAD_STATUSES = ("new", "contacted", "appointment", "won", "lost", "qualified")
APPOINTMENT_STATUSES = ("pending", "completed", "cancelled", "no_show", "rescheduled")
APPOINTMENT_TYPES = ("consultation", "site_survey", "closing", "follow_up")
USER_ROLES = ("owner", "manager", "closer", "setter", "rep")
USER_STATUSES = ("active", "inactive", "invited")
ROOF_TYPES = ("asphalt_shingle", "tile", "metal", "flat", "slate", "wood_shake", "unknown")

FIRST_NAMES = (
    "James", "Maria", "José", "Zoë", "Wei", "Aaliyah", "Siobhán", "Björn", "Fatima", "Olu",
    "Chloé", "Dmitri", "Priya", "Mateo", "Ava", "Liam", "Noah", "Emma", "Sophia", "Ethan",
    "Mia", "Lucas", "Harper", "Élodie", "Søren", "Nguyễn", "Ngozi", "Kenji", "Ana-Lucía", "Jo",
)  # fmt: skip
LAST_NAMES = (
    "Smith", "García", "O'Brien", "Nguyen", "Müller", "Kowalski", "Johnson", "Williams",
    "Brown", "Davis", "Martínez", "Hernández", "Lopez", "D'Angelo", "van der Berg",
    "Smith-Jones", "Ólafsson", "Patel", "Kim", "Lee", "Okafor", "Yamamoto", "Dubois",
)  # fmt: skip
AWKWARD_NAMES = (
    "王伟", "José Ñúñez", "Zoë 😀 Smith", 'Robert "Bobby" Tables',
    "Robert'); DROP TABLE knocks;--", "", None, "  padded name  ", "NAME, WITH COMMA",
    "Line\nBreak", "e\u0301mile (combining accent)", "👨\u200d👩\u200d👧 Family", "مالك المنزل",
    "null", "NULL", "None", "Tab\tSeparated", "C:\\Users\\owner", "O'Neil; \"Jr.\"",
    "x" * 300,
)  # fmt: skip
STREETS = (
    "Main St", "Oak Ave", "Maple Dr", "Cedar Ln", "Sunset Blvd", "Elm St", "Camino Real",
    "Calle Ñandú", "Pine Ct", "Lakeview Rd", "Desert Bloom Way", "Magnolia Pl", "1st Ave",
    "Martin Luther King Jr Blvd", "O'Farrell St",
)  # fmt: skip
NOTES = (
    "Homeowner interested, asked about battery backup.",
    "Not home, left door hanger.",
    "Spoke with spouse; call back after 6pm.",
    "Dog in yard!! Be careful",
    'Has quote from competitor, "wants better price"',
    "Roof is 20+ years old, may need replacement first",
    "Renter — landlord contact: 555-0100",
    "Said: 'come back in spring', maybe",
    "Bill ~$240/mo, very interested 👍",
    "Línea 1\nLínea 2\nLínea 3",
    "comma, separated, notes, here",
    "José's neighbour referred us. 王先生 too.",
    "Robert'); DROP TABLE knocks;--",
    "<script>alert('x')</script>",
    "tab\tseparated\tnotes",
    "trailing spaces   ",
    "   ",
    "",
    "null",
    "\\N",
    "Ünïcödé ëvërÿwhërë ☀️🔋⚡",
    "مرحبا، المالك غير موجود",
    "CRLF line\r\nending",
)
LONG_NOTE = ("Very long note. " * 40 + "Ünïcödé 🔆. ") * 16  # ~10 KB
DISPOSITIONS = ("NH", "NI", "CB", "LEAD", "APPT", "DNK", "RENTER", "Not home - left flyer")
DOMAINS = ("gmail.com", "yahoo.com", "outlook.com", "icloud.com", "example.org", "aol.com")
FILE_NAMES = (
    "power_bill.pdf", "Power Bill (March).pdf", "drivers_license_front.jpg", "license-back.JPG",
    "contract_signed.pdf", "roof_photo_1.heic", "IMG_2041.png", "utility-statement.pdf",
    "meter.jpg", "scan0001.pdf",
)  # fmt: skip
HOSTILE_FILE_NAMES = (
    "../../etc/passwd",
    "a/b\\c.pdf",
    "Zoë's bill – März ☀️.pdf",
    "contract\nsigned.pdf",
    "",
    "CON.pdf",
    ".hidden",
    "..",
    "王伟的电费单.pdf",
    'name with "quotes"; and semicolon.pdf',
    "%2e%2e%2fescape.pdf",
    "/absolute/path.pdf",
    "C:\\Windows\\system32\\evil.exe",
    ("long_" * 60) + ".pdf",
    "power_bill.pdf",  # duplicates a common name: two files of one lead may share it
)
MIME_TYPES = {
    "pdf": "application/pdf",
    "jpg": "image/jpeg",
    "jpeg": "image/jpeg",
    "png": "image/png",
    "heic": "image/heic",
}
# (fips, county, state, lat, lng): leading zeros on purpose (06037 is not 6037).
COUNTIES = (
    ("06037", "Los Angeles County", "CA", 34.05, -118.24),
    ("04013", "Maricopa County", "AZ", 33.45, -112.07),
    ("48201", "Harris County", "TX", 29.76, -95.37),
    ("12086", "Miami-Dade County", "FL", 25.76, -80.19),
    ("32003", "Clark County", "NV", 36.17, -115.14),
    ("06073", "San Diego County", "CA", 32.72, -117.16),
    ("06059", "Orange County", "CA", 33.72, -117.83),
    ("06065", "Riverside County", "CA", 33.95, -117.40),
    ("06071", "San Bernardino County", "CA", 34.11, -117.29),
    ("48113", "Dallas County", "TX", 32.78, -96.80),
    ("48029", "Bexar County", "TX", 29.42, -98.49),
    ("48453", "Travis County", "TX", 30.27, -97.74),
    ("12011", "Broward County", "FL", 26.12, -80.14),
    ("12099", "Palm Beach County", "FL", 26.71, -80.05),
    ("12057", "Hillsborough County", "FL", 27.95, -82.46),
    ("12095", "Orange County", "FL", 28.54, -81.38),
    ("04019", "Pima County", "AZ", 32.22, -110.97),
    ("49035", "Salt Lake County", "UT", 40.76, -111.89),
    ("08031", "Denver County", "CO", 39.74, -104.99),
    ("08005", "Arapahoe County", "CO", 39.65, -104.33),
    ("35001", "Bernalillo County", "NM", 35.08, -106.65),
    ("13121", "Fulton County", "GA", 33.75, -84.39),
    ("37119", "Mecklenburg County", "NC", 35.23, -80.84),
    ("45045", "Greenville County", "SC", 34.85, -82.39),
    ("47037", "Davidson County", "TN", 36.16, -86.78),
    ("25017", "Middlesex County", "MA", 42.49, -71.39),
    ("36103", "Suffolk County", "NY", 40.87, -72.80),
    ("34013", "Essex County", "NJ", 40.79, -74.25),
    ("15003", "Honolulu County", "HI", 21.31, -157.86),
    ("06001", "Alameda County", "CA", 37.80, -122.27),
)
