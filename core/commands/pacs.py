"""``hemarelay pacs find|get|send``: the hospital's PACS from the command line.

The server comes from the ``[pacs]`` table of the settings file (the desktop
application's PACS settings write it; see the README); the password from
``$HEMARELAY_PACS_PASSWORD``, the OS keyring or a prompt on the terminal.
"""

from __future__ import annotations

import getpass
import sys
from pathlib import Path

from . import add_command


def register(subparsers) -> None:
    p = add_command(
        subparsers,
        "pacs",
        description="Query the hospital's PACS for head CT studies, retrieve a CT series into the site's "
        "worklist folder as a case, and send an approved case's DICOM SEG and volume report (TID 1500 SR, "
        "optionally the PDF) back. The PACS is set in the application (File > PACS settings…) or in the "
        "[pacs] table of the settings file.",
    )
    sub = p.add_subparsers(dest="pacs_command", metavar="ACTION", required=True)
    common = {"help": "store the password typed at the prompt in the system keyring"}

    f = sub.add_parser(
        "find", help="list studies (by patient id, accession number, dates, modality) or a study's series"
    )
    f.add_argument("--patient-id", default="", metavar="ID")
    f.add_argument("--accession", default="", metavar="NUMBER")
    f.add_argument("--from", dest="date_from", default="", metavar="YYYY-MM-DD")
    f.add_argument("--to", dest="date_to", default="", metavar="YYYY-MM-DD")
    f.add_argument("--modality", default="CT", help="modality in the study (default CT; 'any' for all)")
    f.add_argument("--study", default="", metavar="STUDY_UID", help="list this study's series instead")
    f.add_argument("--limit", type=int, default=100)
    f.add_argument("--remember-password", action="store_true", **common)
    f.set_defaults(func=run_find)

    g = sub.add_parser("get", help="retrieve a study's CT series into the worklist folder as a case")
    g.add_argument("study", metavar="STUDY_UID")
    g.add_argument("--series", default="", metavar="SERIES_UID", help="default: the study's CT series with most images")
    g.add_argument(
        "--to",
        dest="folder",
        type=Path,
        default=None,
        metavar="FOLDER",
        help="the worklist folder (default: the site data folder of the settings)",
    )
    g.add_argument("--remember-password", action="store_true", **common)
    g.set_defaults(func=run_get)

    s = sub.add_parser("send", help="send an approved case's SEG and structured report (and PDF) to the PACS")
    s.add_argument("ct", type=Path, metavar="CASE_CT_DIR", help="the case's DICOM folder (ct_<id>/ in the worklist)")
    pdf = s.add_mutually_exclusive_group()
    pdf.add_argument("--pdf", dest="pdf", action="store_true", default=None, help="also send the PDF report")
    pdf.add_argument("--no-pdf", dest="pdf", action="store_false", help="send SEG and SR only")
    s.add_argument("--model-version", default="", metavar="TEXT", help="the model that helped make the mask")
    s.add_argument("--remember-password", action="store_true", **common)
    s.set_defaults(func=run_send)


def _prompt(question: str) -> str | None:
    if not sys.stdin.isatty():
        return None
    return getpass.getpass(question)


def _client(args):
    from ..pacs import credentials
    from ..pacs.config import load_pacs_config
    from ..pacs.connect import open_client

    cfg = load_pacs_config().require()
    typed: list[str] = []

    def prompt(q: str) -> str | None:
        answer = _prompt(q)
        if answer:
            typed.append(answer)
        return answer

    client = open_client(cfg, prompt)
    if args.remember_password and typed:
        credentials.remember(cfg, typed[0])
        print("The password is stored in the system keyring.", file=sys.stderr)
    return client


def run_find(args) -> int:
    from ..pacs.client import StudyQuery

    client = _client(args)
    try:
        if args.study:
            series = client.find_series(args.study)
            print("series_uid\tmodality\tnumber\timages\tdescription")
            for s in series:
                print(f"{s.series_uid}\t{s.modality}\t{s.number}\t{s.n_instances or ''}\t{s.description}")
            print(f"{len(series)} series", file=sys.stderr)
            return 0
        modality = "" if args.modality.lower() == "any" else args.modality.upper()
        q = StudyQuery(args.patient_id, args.accession, args.date_from, args.date_to, modality, args.limit)
        studies = client.find_studies(q)
    finally:
        client.close()
    print("study_uid\tdate\tpatient_id\tpatient_name\taccession\tmodalities\tseries\timages\tdescription")
    for st in studies:
        print(
            f"{st.study_uid}\t{st.study_date}\t{st.patient_id}\t{st.patient_name}\t{st.accession_number}\t"
            f"{'/'.join(st.modalities)}\t{st.n_series or ''}\t{st.n_instances or ''}\t{st.description}"
        )
    print(f"{len(studies)} studies", file=sys.stderr)
    return 0


def _worklist_folder(args) -> Path:
    from ..errors import ConfigError
    from ..pacs.config import site_data_folder

    folder = args.folder if args.folder is not None else site_data_folder()
    if not folder:
        raise ConfigError("Give the worklist folder with --to FOLDER (no site data folder is set in the settings).")
    return Path(folder)


def run_get(args) -> int:
    from ..pacs.retrieve import STAGE_DOWNLOAD, retrieve_series
    from ..progress import drive
    from .console import ConsolePrinter

    folder = _worklist_folder(args)
    client = _client(args)
    try:
        result = drive(
            retrieve_series(client, args.study, folder, args.series), ConsolePrinter(quiet_stages=[STAGE_DOWNLOAD])
        )
    finally:
        client.close()
    print(result.text())
    return 0


def run_send(args) -> int:
    from ..pacs.send import send_case
    from ..progress import drive
    from .console import ConsolePrinter

    client = _client(args)
    try:
        result = drive(
            send_case(client, args.ct, include_pdf=args.pdf, model_version=args.model_version), ConsolePrinter()
        )
    finally:
        client.close()
    print(result.text())
    return 0
