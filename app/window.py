"""The main window: wiring only.

The slice view sits in the centre, the worklist on the left, editing,
display and report panels on the right, the training ring in its own dock
beside them. Everything with behaviour lives in its own module: the case's
life in :mod:`app.case_controller`, mouse editing in :mod:`app.edit_controller`,
the view in :mod:`app.viewer`, the panels in :mod:`app.panels`, the ring in
:mod:`app.ring_dock`, and all the real work in ``core``.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np

from PySide6.QtCore import QThreadPool, QTimer, Qt
from PySide6.QtWidgets import QDockWidget, QFileDialog, QLabel, QMainWindow, QMessageBox, QProgressBar, QPushButton

from core.annotation import EditorSettings, HURange, Tool
from core.case_state import CaseState, case_state
from core.errors import ConfigError, HemaRelayError, InputError
from core.progress import Progress
from core.io import load_mask
from core.provenance import prediction_model
from core.reports import ReportJob
from core.reports.agreement import MaskAgreement, compare_volumes
from core.reports.seg import why_no_seg, write_seg
from core.volume import Volume
from core.site.gates import implausible
from core.worklist import CaseStatus, CaseVolume, Worklist, measure_volumes, report_jobs, scan_folder

from .actions import build_actions
from .case_controller import CaseController
from .edit_controller import EditController
from .mask_hu_dialog import MaskHUDialog
from .menus import add_menus, build_viewer_actions, connect_viewer_actions
from .errors import show_error, user_message
from .panels import DisplayPanel, ReportPanel, ToolsPanel, WorklistPanel
from .panels.column import panel_column
from .panels.measure_panel import MeasurePanel
from .prediction_controller import PredictionController
from .ring_dock import RingDock
from .settings import Settings, load_settings, save_settings
from .settings_dialog import SettingsDialog
from .shortcuts_dialog import ShortcutsDialog
from .viewer import OverlayStyle, ViewerArea, WindowLevel
from .viewer_warning import ViewWarning
from .workers import Job, job_from_function, start_job

TITLE = "Hematoma Relay"


class MainWindow(QMainWindow):
    def __init__(self, settings: Settings | None = None) -> None:
        super().__init__()
        self.setObjectName("mainWindow")
        self.resize(1500, 950)
        problem = ""
        if settings is None:
            try:
                settings = load_settings()
            except ConfigError as exc:
                settings, problem = Settings(), str(exc)
        self.settings = settings
        self.worklist: Worklist | None = None
        self.last_agreement: MaskAgreement | None = None
        self._closing = False
        self._job: Job | None = None  # the open/save job shown in the status bar
        self._close_after_training = False
        a = self.actions = build_actions(self, settings.presets)

        self.viewer = ViewerArea()  # axial, coronal and sagittal views, linked
        self.view = self.viewer.axial
        self.setCentralWidget(self.viewer)
        self.viewer_actions = build_viewer_actions(self, self.viewer, a)
        self.controller = CaseController(self._ask, settings.autosave_delay_s, self)
        self.edit = EditController(
            self.viewer,
            EditorSettings(settings.brush_mm, HURange(settings.blood_low_hu, settings.blood_high_hu)),
            lambda *q: self.controller.ask(*q),
            self,
            user=settings.user,
        )
        styles = {
            "manual": OverlayStyle(**vars(settings.manual)),
            "prediction": OverlayStyle(**vars(settings.prediction)),
        }
        self.worklist_panel = WorklistPanel(a)
        self.tools_panel = ToolsPanel(a, settings.brush_mm, settings.blood_low_hu, settings.blood_high_hu)
        self.display_panel = DisplayPanel(a, styles)
        self.measure_panel = MeasurePanel(self.viewer_actions, self.edit.fill_limit_ml)
        self.report_panel = ReportPanel(self._case_report_job, self._worklist_report_jobs, self._choose_report_folder)
        self.worklist_panel.model.state_of = self._state_of
        self.view_warning = ViewWarning(self.view)
        # the Use gate's confirmation goes through the controller's ask (tests replace it)
        self.ring_dock = RingDock(
            settings.site,
            lambda *q: self.controller.ask(*q),
            self,
            open_folder=lambda: str(self.worklist.folder) if self.worklist is not None else "",
        )
        self.predictions = PredictionController(self)
        for name, style in styles.items():
            self.viewer.set_style(name, style)
        # the ring's child processes wait on their own threads: never starve case jobs
        pool = QThreadPool.globalInstance()
        pool.setMaxThreadCount(max(pool.maxThreadCount(), 8))
        self._build_docks()
        self._build_menus()
        self._build_status_bar()
        self._live_timer = QTimer(self)
        self._live_timer.setSingleShot(True)
        self._live_timer.setInterval(250)
        self._live_timer.timeout.connect(self._update_live)
        self._connect()
        self.viewer.set_window(
            WindowLevel(settings.presets[0].width, settings.presets[0].level), settings.presets[0].name
        )
        self._case_actions_enabled(False)
        self._update_title()
        if problem:
            self.status(problem)
        QTimer.singleShot(0, self.ring_dock.ring.start)

    # ----------------------------------------------------------- layout
    def _build_docks(self) -> None:
        left = QDockWidget("Worklist", self)
        left.setObjectName("worklistDock")
        left.setWidget(self.worklist_panel)
        self.addDockWidget(Qt.DockWidgetArea.LeftDockWidgetArea, left)
        scroll = panel_column(self.tools_panel, self.measure_panel, self.display_panel, self.report_panel)
        scroll.setMinimumWidth(scroll.widget().sizeHint().width() + scroll.verticalScrollBar().sizeHint().width() + 4)
        right = QDockWidget("Tools", self)
        right.setObjectName("toolsDock")
        right.setWidget(scroll)
        self.addDockWidget(Qt.DockWidgetArea.RightDockWidgetArea, right)
        self.addDockWidget(Qt.DockWidgetArea.RightDockWidgetArea, self.ring_dock)
        self.tabifyDockWidget(right, self.ring_dock)
        right.raise_()
        self.resizeDocks([left, right], [420, 380], Qt.Orientation.Horizontal)

    def _build_menus(self) -> None:
        a, bar = self.actions, self.menuBar()
        file_menu = bar.addMenu("&File")
        for act in (
            a.open_folder,
            a.open_file,
            a.open_dicom,
            None,
            a.save,
            a.close_case,
            None,
            a.preferences,
            None,
            a.quit,
        ):
            file_menu.addSeparator() if act is None else file_menu.addAction(act)
        edit_menu = bar.addMenu("&Edit")
        for act in (a.undo, a.redo, None, a.accept_all, None, *a.tools.values()):
            edit_menu.addSeparator() if act is None else edit_menu.addAction(act)
        training = bar.addMenu("&Training")
        for act in self.ring_dock.menu_actions():
            training.addAction(act)
        add_menus(self, a, self.viewer_actions)  # View, Measure, Help; viewer entries in Edit

    def _build_status_bar(self) -> None:
        self.job_label = QLabel("")
        self.job_bar = QProgressBar()
        self.job_bar.setMaximumWidth(220)
        self.job_cancel = QPushButton("Cancel")
        self.job_cancel.clicked.connect(lambda: self._job.cancel() if self._job is not None else None)
        for w in (self.job_label, self.job_bar, self.job_cancel):
            w.setVisible(False)
            self.statusBar().addPermanentWidget(w)
        self.user_label = QLabel(f"user: {self.settings.user}")
        self.statusBar().addPermanentWidget(self.user_label)
        self.job_label.setTextFormat(Qt.TextFormat.PlainText)  # may quote the ring server's text
        self.statusBar().addPermanentWidget(self.ring_dock.status_label)

    def _connect(self) -> None:
        a, c, v = self.actions, self.controller, self.viewer
        a.open_folder.triggered.connect(self._ask_folder)
        a.open_file.triggered.connect(self._ask_file)
        a.open_dicom.triggered.connect(self._ask_dicom)
        a.save.triggered.connect(lambda: c.save())
        a.close_case.triggered.connect(lambda: c.close_case())
        a.preferences.triggered.connect(self._preferences)
        a.quit.triggered.connect(self.close)
        a.undo.triggered.connect(lambda: self._undo_redo(undo=True))
        a.redo.triggered.connect(lambda: self._undo_redo(undo=False))
        a.accept_all.triggered.connect(self.accept_whole_prediction)
        a.difference.toggled.connect(v.set_difference_mode)
        a.tool_group.triggered.connect(lambda act: self.edit.set_tool(act.data()))
        for act, preset in zip(a.presets, self.settings.presets):
            act.triggered.connect(lambda _c=False, p=preset: v.set_window(WindowLevel(p.width, p.level), p.name))
        connect_viewer_actions(
            self.viewer_actions,
            v,
            self.edit,
            self.tools_panel,
            lambda: ShortcutsDialog(self).exec(),
            self._mask_hu,
            self,
        )
        self.tools_panel.brushChanged.connect(self.edit.set_brush_mm)
        self.tools_panel.rangeChanged.connect(self.edit.set_hu_range)
        self.display_panel.styleChanged.connect(v.set_style)
        v.windowChanged.connect(self.display_panel.show_window)
        self.edit.message.connect(self.status)
        self.edit.measure.changed.connect(self.measure_panel.show_measurements)
        self.measure_panel.removeRequested.connect(self.edit.measure.remove)
        self.measure_panel.limitChanged.connect(self.edit.set_fill_limit_ml)
        self.worklist_panel.openRequested.connect(self.open_label)
        self.worklist_panel.statusRequested.connect(self.set_status)
        self.report_panel.failed.connect(lambda text: self.error_text(text, "Volume report"))
        self.report_panel.segRequested.connect(lambda: self.export_seg())
        self.report_panel.compareRequested.connect(lambda: self.compare_masks())
        c.opened.connect(self._opened)
        c.closed.connect(self._closed)
        c.maskChanged.connect(self._mask_changed)
        c.dirtyChanged.connect(self._dirty_changed)
        c.saved.connect(self._saved)
        c.message.connect(self.status)
        c.failed.connect(lambda text: self.error_text(text))
        c.jobStarted.connect(self._track_job)
        self._connect_ring()

    def _connect_ring(self) -> None:
        d, pc = self.ring_dock, self.predictions
        d.message.connect(self.status)
        d.alert.connect(lambda title, text: self.error_text(text, title))
        d.setupChanged.connect(self._site_changed)
        d.modelChosen.connect(pc.use_model)
        d.trainingEnded.connect(self._training_ended)
        pc.labelChanged.connect(self._prediction_label)
        pc.updated.connect(self._prediction_updated)
        pc.failed.connect(self.status)
        pc.started.connect(self._track_job)
        self.controller.opened.connect(pc.case_opened)
        self.controller.closed.connect(pc.case_closed)

    # ----------------------------------------------------------- user messages
    def status(self, text: str) -> None:
        self.statusBar().showMessage(text, 15000)

    def error_text(self, text: str, title: str = TITLE) -> None:
        self.status(text)
        box = QMessageBox(QMessageBox.Icon.Warning, title, text, QMessageBox.StandardButton.Ok, self)
        box.setObjectName("errorDialog")
        box.setTextFormat(Qt.TextFormat.PlainText)  # may quote the ring server's text
        box.open()

    def _ask(self, title: str, text: str, buttons: list[str]) -> str:
        box = QMessageBox(QMessageBox.Icon.Question, title, text, parent=self)
        box.setTextFormat(Qt.TextFormat.PlainText)  # may quote the ring server's text
        made = {
            box.addButton(
                b,
                QMessageBox.ButtonRole.AcceptRole
                if n == 0
                else QMessageBox.ButtonRole.RejectRole
                if b == "Cancel"
                else QMessageBox.ButtonRole.DestructiveRole,
            ): b
            for n, b in enumerate(buttons)
        }
        box.exec()
        return made.get(box.clickedButton(), buttons[-1])

    def _track_job(self, job: Job) -> None:
        self.job_label.setText(job.name)
        self.job_bar.setRange(0, 0)
        for w in (self.job_label, self.job_bar, self.job_cancel):
            w.setVisible(True)
        self._job = job

        def progress(ev: Progress) -> None:
            if ev.total:
                self.job_bar.setRange(0, 100)
                self.job_bar.setValue(int(100 * ev.done / ev.total))
            self.job_label.setText(f"{ev.stage}: {ev.message}" if ev.message else ev.stage)

        def hide(*_args) -> None:
            if self._job is job:
                for w in (self.job_label, self.job_bar, self.job_cancel):
                    w.setVisible(False)

        job.progress.connect(progress)
        job.finished.connect(hide)
        job.errored.connect(hide)

    # ----------------------------------------------------------- training ring
    def _training_ended(self, end) -> None:
        if self._close_after_training:
            QTimer.singleShot(0, self.close)

    def _site_changed(self, setup) -> None:
        self.settings = replace(self.settings, site=setup)
        self._save_settings_quietly()

    def apply_site(self, setup) -> None:
        """Use and save a new site set-up (tests; the dialog goes through the ring dock)."""
        self.ring_dock.apply_site(setup)

    def _prediction_updated(self, session, label: str) -> None:
        if session is not self.controller.session:
            return
        self.viewer.set_prediction(session.prediction)
        self.edit.detach()
        self._attach_editor(session)
        self._live_timer.start()
        if self.worklist is not None and self.controller.label is not None:
            try:
                self.worklist.refresh(self.controller.label)
                self.worklist_panel.model.case_changed(self.controller.label)
            except HemaRelayError:
                pass
        self.status(label)

    def _save_settings_quietly(self) -> None:
        try:
            save_settings(self.settings)
        except HemaRelayError as exc:
            self.status(str(exc))

    # ----------------------------------------------------------- worklist
    def open_folder(self, folder: str | Path) -> None:
        try:
            wl = scan_folder(folder)
        except HemaRelayError as exc:
            self.error_text(str(exc), "Open site folder")
            return
        self.worklist = wl
        self.worklist_panel.set_worklist(wl)
        self.settings = replace(self.settings, last_folder=str(wl.folder))
        self.status(f"{len(wl.cases)} cases in {wl.folder}")
        for problem in wl.problems.values():
            self.status(problem)
        self._measure_volumes(wl)

    def _measure_volumes(self, wl: Worklist) -> None:
        def on_event(ev: Progress) -> None:
            if isinstance(ev, CaseVolume) and self.worklist is wl:
                self.worklist_panel.model.set_volume(ev)

        start_job(
            "Measuring volumes",
            lambda token: measure_volumes(list(wl.cases), token),
            on_progress=on_event,
            on_error=lambda exc: self.status(user_message(exc)),
            parent=self,
        )

    def open_label(self, label: str) -> None:
        if self.worklist is None:
            return
        case = self.worklist.find(label)
        self.worklist_panel.select(label)
        self.controller.open_case(case.paths.ct, label)

    def set_status(self, label: str, status: CaseStatus) -> None:
        if self.worklist is None:
            return
        if (
            label == self.controller.label
            and self.controller.dirty
            and status in (CaseStatus.REVIEWED, CaseStatus.APPROVED)
        ):
            self.error_text(
                f"Case {label} has unsaved edits; save them before marking it '{status.value}'.", "Case status"
            )
            return
        try:
            self.worklist.set_status(label, status, self.settings.user)
        except HemaRelayError as exc:
            self.error_text(str(exc), "Case status")
            return
        self.worklist_panel.model.case_changed(label)
        self._refresh_case_views()
        self.status(f"Case {label}: {status.value} (by {self.settings.user}).")

    # ----------------------------------------------------------- the open case
    def _opened(self, session) -> None:
        self.viewer.set_volume(
            session.hu, session.stack, session.model.data, session.prediction, session.first_slice_with_mask()
        )
        self.worklist_panel.model.set_open(self.controller.label, session.model.dirty)
        self._case_actions_enabled(True)
        self._attach_editor(session)
        self._mask_changed(None)
        self._refresh_case_views()
        if session.prediction is None:
            self.status(
                f"Case {session.case_id} opened; no model prediction ({session.paths.prediction.name}) beside it."
            )

    def _attach_editor(self, session) -> None:
        """Edit ``session``; the accept-prediction tools work only when it has a prediction."""
        self.edit.attach(session)
        self.actions.accept_all.setEnabled(session.prediction is not None)
        self.actions.tools[Tool.ACCEPT_COMPONENT].setEnabled(session.prediction is not None)

    def _closed(self) -> None:
        self.edit.detach()
        self.viewer.clear()
        self.worklist_panel.model.set_open(None, False)
        self._case_actions_enabled(False)
        self.report_panel.show_live(None, None, "")
        self.view_warning.show_warning("")
        self._refresh_case_views()

    def _mask_changed(self, change) -> None:
        if change is not None:
            self.viewer.refresh_overlays(change.slices)
        s = self.controller.session
        model = s.model if s is not None else None
        self.actions.undo.setEnabled(bool(model and model.can_undo))
        self.actions.redo.setEnabled(bool(model and model.can_redo))
        if model is not None:
            text = f"{model.undo_depth} undo step(s)"
            if model.undo_label:
                text += f"; last: {model.undo_label}"
            self.tools_panel.show_state(text)
        if change is None or change.reason != "edit":
            self._live_timer.start()

    def _dirty_changed(self, dirty: bool) -> None:
        self.worklist_panel.model.set_open(self.controller.label, dirty)
        self._refresh_case_views()
        self._live_timer.start()  # the measured mask's label changes with it

    def _saved(self, path: Path) -> None:
        label, s = self.controller.label, self.controller.session
        if self.worklist is None or label is None:
            return
        try:
            _, message = self.worklist.mask_saved(label, self.settings.user)
        except HemaRelayError as exc:
            message = str(exc)
        if s is not None:
            self.worklist_panel.model.set_volume(
                CaseVolume("saved", label=label, volume_ml=s.volume_ml(), source="manual")
            )
        self.worklist_panel.model.case_changed(label)
        self._refresh_case_views()
        self._live_timer.start()
        if message:
            self.status(message)

    def _undo_redo(self, undo: bool) -> None:
        s = self.controller.session
        if s is None:
            return
        self.edit.discard_preview()
        done = s.model.undo() if undo else s.model.redo()
        if not done:
            self.status("Nothing to undo." if undo else "Nothing to redo.")

    def _update_live(self) -> None:
        s = self.controller.session
        if s is None:
            self.report_panel.show_live(None, None, "")
        else:
            state = self.case_state()
            self.report_panel.show_live(
                s.volume_ml(),
                s.prediction_volume_ml(),
                state.mask if state else s.mask_label(),
                state.summary() if state else "",
            )
        self._show_plausibility()

    def _case_actions_enabled(self, on: bool) -> None:
        a = self.actions
        for act in (a.save, a.close_case, a.undo, a.redo, a.accept_all, *a.tools.values()):
            act.setEnabled(on)
        for b in (self.report_panel.case_button, self.report_panel.seg_button, self.report_panel.compare_button):
            b.setEnabled(on)

    def _update_title(self) -> None:
        state = self.case_state()
        if state is None:
            self.setWindowTitle(TITLE)
        else:
            star = " *" if state.unsaved else ""
            self.setWindowTitle(f"{TITLE} — case {state.label} [{state.status_text}]{star}")

    # ----------------------------------------------------------- one state per case
    def _state_of(self, case) -> CaseState:
        """A worklist row's state; the open case's includes its session."""
        s = self.controller.session if case.label == self.controller.label else None
        return case_state(case.label, case, s)

    def case_state(self) -> CaseState | None:
        """The open case's state, as the worklist, status control, report panel and title show it."""
        s = self.controller.session
        if s is None:
            return None
        label = self.controller.label or s.case_id
        case = None
        if self.worklist is not None and self.controller.label is not None:
            case = next((c for c in self.worklist.cases if c.label == label), None)
        return case_state(label, case, s)

    def _refresh_case_views(self) -> None:
        self._update_title()
        if self.controller.label is not None:
            self.worklist_panel.model.case_changed(self.controller.label)
        self.worklist_panel.follow_selection()

    # ----------------------------------------------------------- plausibility
    def _prediction_label(self, text: str) -> None:
        self.display_panel.prediction_source.setText(text)
        self._show_plausibility()

    def _show_plausibility(self) -> None:
        """An implausibly large prediction is flagged over the view and beside its label."""
        s = self.controller.session
        warn = implausible(s.prediction_volume_ml()) if s is not None else ""
        self.view_warning.show_warning(f"Prediction {warn}" if warn else "")
        self.display_panel.prediction_source.setStyleSheet("color: #c03020;" if warn else "")
        self.display_panel.prediction_source.setToolTip(warn)

    def accept_whole_prediction(self) -> None:
        s = self.controller.session
        warn = implausible(s.prediction_volume_ml()) if s is not None else ""
        if warn:
            yes = "Accept it anyway"
            if (
                self.controller.ask(
                    "Accept the whole prediction?", f"The model's prediction is {warn}", [yes, "Cancel"]
                )
                != yes
            ):
                self.status("The prediction was not accepted.")
                return
        self.edit.accept_whole_prediction()

    def _mask_hu(self) -> None:
        s = self.controller.session
        if s is None:
            return
        dlg = MaskHUDialog(s.hu, s.model.data, self.edit.measure.record_mask_hu, self)
        dlg.exec()
        dlg.deleteLater()

    # ----------------------------------------------------------- reports
    def _case_report_job(self, use_prediction: bool) -> ReportJob:
        s = self.controller.session
        if s is None:
            raise InputError("No case is open.")
        state = self.case_state()
        job = replace(
            s.report_job(use_prediction),
            case=self.controller.label or s.case_id,
            reviewer=state.status_by or "nobody yet",
            case_status=state.status_text,
        )
        if use_prediction:
            return replace(job, model_version=prediction_model(s.paths.prediction))
        chosen = self.ring_dock.ring.chosen()  # the model the site uses, for the record
        return replace(
            job,
            model_version=f"{chosen.label()}, {chosen.hash_text()} (in use; the mask is manual)"
            if chosen is not None
            else "",
        )

    def _worklist_report_jobs(self, use_prediction: bool) -> tuple[list[ReportJob], list[str]]:
        """Saved masks of every case, except the open one: measured as on screen."""
        if self.worklist is None:
            raise InputError("No site folder is open; open one with File > Open site folder.")
        jobs, left_out = report_jobs(self.worklist.cases, use_prediction)
        label = self.controller.label
        if label is not None and self.controller.session is not None:
            jobs = [j for j in jobs if j.case != label]
            left_out = [x for x in left_out if x != label]
            try:
                jobs.append(self._case_report_job(use_prediction))
            except HemaRelayError:
                left_out.append(label)
            order = [c.label for c in self.worklist.cases]
            jobs.sort(key=lambda j: order.index(j.case))
        return jobs, left_out

    def _mask_on_screen(self) -> tuple[Volume, str]:
        """The open case's manual mask as on screen (unsaved edits included), on the CT's grid."""
        job = self.controller.session.report_job(False)
        return job.mask, job.mask_source

    def export_seg(self, out: Path | None = None) -> Job | None:
        """The manual mask as a DICOM SEG over the case's source series (core.reports.seg)."""
        s = self.controller.session
        if s is None:
            return None
        reason = why_no_seg(s.ct)
        if reason:
            self.error_text(reason, "DICOM SEG")
            return None
        ct_dir = Path(s.ct.source)
        if out is None:
            path, _ = QFileDialog.getSaveFileName(
                self, "Save the mask as DICOM SEG", str(ct_dir.parent / f"seg_{s.case_id}.dcm"), "DICOM files (*.dcm)"
            )
            if not path:
                return None
            out = Path(path)
        mask, what = self._mask_on_screen()
        job = start_job(
            "Exporting DICOM SEG",
            job_from_function("DICOM SEG", lambda: write_seg(ct_dir, mask, out)),
            on_finished=lambda r: self.status(
                f"DICOM SEG written: {r.path} ({what}; {r.n_frames_with_mask} of "
                f"{r.n_frames} source images hold hematoma). {r.note()}".strip()
            ),
            on_error=lambda exc: self.error_text(user_message(exc, "Exporting DICOM SEG"), "DICOM SEG"),
            parent=self,
        )
        self._track_job(job)
        return job

    def compare_masks(self, other: Path | None = None) -> Job | None:
        """Agreement of the manual mask on screen with the model's prediction (``other`` None and
        a prediction shown) or with another mask file of this case (another rater's)."""
        s = self.controller.session
        if s is None:
            return None
        if other is None:
            choice = "A mask file…"
            if s.prediction is not None:
                choice = self.controller.ask(
                    "Compare masks",
                    "Compare the manual mask with:",
                    ["The model's prediction", "A mask file…", "Cancel"],
                )
            if choice == "Cancel":
                return None
            if choice == "A mask file…":
                path, _ = QFileDialog.getOpenFileName(
                    self, "Another mask of this case", str(s.paths.folder), "Masks (*.nii *.nii.gz)"
                )
                if not path:
                    return None
                other = Path(path)
        a, name_a = self._mask_on_screen()
        ct = s.ct
        if other is None:
            b = ct.with_data(s.to_source(np.asarray(s.prediction, np.uint8)), source=None)
            name_b = s.prediction_label()

            def work():
                return compare_volumes(a, b, name_a, name_b)
        else:

            def work():
                return compare_volumes(a, load_mask(other, ct), name_a, other.name)

        job = start_job(
            "Comparing masks",
            job_from_function("Comparing masks", work),
            on_finished=self._show_agreement,
            on_error=lambda exc: self.error_text(user_message(exc, "Comparing masks"), "Compare masks"),
            parent=self,
        )
        self._track_job(job)
        return job

    def _show_agreement(self, result: MaskAgreement) -> None:
        self.last_agreement = result
        head, _, table = result.text().partition(f"{'slice':>5}")
        box = QMessageBox(
            QMessageBox.Icon.Information,
            "Agreement between two masks",
            head.strip(),
            QMessageBox.StandardButton.Ok,
            self,
        )
        box.setObjectName("agreementDialog")
        if table:
            box.setDetailedText(f"{'slice':>5}{table}")
        box.open()
        self.status(head.strip().splitlines()[-1])

    def _choose_report_folder(self) -> Path | None:
        start = self.settings.last_folder or str(Path.home())
        folder = QFileDialog.getExistingDirectory(self, "Folder for the report (CSV and PDFs)", start)
        return Path(folder) if folder else None

    # ----------------------------------------------------------- dialogs
    def _ask_folder(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Open site folder", self.settings.last_folder)
        if folder:
            self.open_folder(folder)

    def _ask_file(self) -> None:
        path, _ = QFileDialog.getOpenFileName(
            self, "Open CT", self.settings.last_folder, "CT scans (*.nii *.nii.gz);;All files (*)"
        )
        if path:
            self.controller.open_case(path)

    def _ask_dicom(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Open DICOM folder", self.settings.last_folder)
        if folder:
            self.controller.open_case(folder)

    def _preferences(self) -> None:
        dlg = SettingsDialog(self.settings, self)
        if dlg.exec() != SettingsDialog.DialogCode.Accepted:
            return
        try:
            new = dlg.result_settings()
            save_settings(new)
        except HemaRelayError as exc:
            show_error(self, exc, "Preferences")
            return
        self.apply_settings(new)

    def apply_settings(self, s: Settings) -> None:
        self.settings = s
        for act, p in zip(self.actions.presets, s.presets):
            act.setText(p.label())
            try:
                act.triggered.disconnect()
            except (RuntimeError, TypeError):
                pass
            act.triggered.connect(lambda _c=False, p=p: self.viewer.set_window(WindowLevel(p.width, p.level), p.name))
        self.tools_panel.low.setValue(s.blood_low_hu)
        self.tools_panel.high.setValue(s.blood_high_hu)
        self.tools_panel.brush.setValue(s.brush_mm)
        self.controller.set_autosave_delay(s.autosave_delay_s)
        self.user_label.setText(f"user: {s.user}")

    # ----------------------------------------------------------- closing
    def closeEvent(self, event) -> None:  # noqa: N802
        if not self._closing and self.ring_dock.ring.training:
            event.ignore()
            if self._close_after_training:
                return  # already stopping; closes when the turn has ended
            answer = self.controller.ask(
                "Training in progress",
                "This site's training turn is still running. Cancel it "
                "(nothing is published; the ring stays as it was) and quit?",
                ["Cancel training and quit", "Keep training"],
            )
            if answer != "Keep training":
                # wait for the child to release the lease before quitting: closes on trainingEnded
                self._close_after_training = True
                self.status("Stopping the training turn; the window closes when the lease is released…")
                self.ring_dock.ring.cancel_training()
            return
        if self._closing:
            self.ring_dock.shutdown()
            QThreadPool.globalInstance().waitForDone(10000)  # let writes in flight finish
            try:
                save_settings(self.settings)
            except HemaRelayError:
                pass  # the last folder is a convenience; never block closing for it
            event.accept()
            return
        event.ignore()

        def then(ok: bool) -> None:
            if ok:
                self._closing = True
                # not self.close() here: inside closeEvent Qt ignores a nested close
                # (close_case answers at once when nothing is unsaved)
                QTimer.singleShot(0, self.close)

        self.controller.close_case(then)
