"""The main window: wiring only.

The slice view sits in the centre, the worklist on the left, editing,
display and report panels on the right, the training ring in its own dock
beside them. Everything with behaviour lives in its own module: the case's
life in :mod:`app.case_controller`, the site folder and case statuses in
:mod:`app.worklist_controller`, reports, DICOM SEG and mask comparison in
:mod:`app.case_reports`, mouse editing in :mod:`app.edit_controller`, the view
in :mod:`app.viewer`, the panels in :mod:`app.panels`, the ring in
:mod:`app.ring_dock`, and all the real work in ``core``. Which commands are
enabled is computed in one Qt-free function (:func:`core.cases.ui_flags.ui_flags`)
and bound here, once, in :meth:`MainWindow._flag_table`.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt, QThreadPool, QTimer
from PySide6.QtWidgets import QDockWidget, QFileDialog, QInputDialog, QLabel, QMainWindow

from core.annotation import EditorSettings, HURange, Tool
from core.cases.case_state import CaseState
from core.cases.ui_flags import ui_flags
from core.cases.worklist import CaseStatus, Worklist
from core.errors import ConfigError, HemaRelayError

from .actions import build_actions
from .case_controller import CaseController
from .case_reports import CaseReports
from .close_flow import CloseFlow
from .edit_controller import EditController
from .errors import ask, show_error, warning_box
from .first_paint import after_first_paint
from .flag_bindings import FlagTable, apply_flags, window_flags
from .islands_dialog import IslandsDialog
from .job_display import JobDisplay
from .mask_hu_dialog import MaskHUDialog
from .menus import add_menus, build_viewer_actions, connect_viewer_actions
from .pacs_controller import PacsController
from .panels import DisplayPanel, ReportPanel, ToolsPanel, WorklistPanel
from .panels.column import panel_column
from .panels.measure_panel import MeasurePanel
from .prediction_controller import PredictionController
from .prediction_display import PredictionDisplay
from .preferences import UNNAMED, Preferences
from .ring_dock import RingDock
from .settings import Settings, load_settings, save_settings
from .settings_dialog import SettingsDialog
from .shortcuts_dialog import ShortcutsDialog
from .viewer import OverlayStyle, ViewerArea, WindowLevel
from .viewer_warning import ViewWarning
from .wheel_guard import guard_wheel_below
from .worklist_controller import WorklistController

TITLE = "Hematoma Relay"
PREDICT_AT_LATEST_MS = 1000  # an opened case's prediction starts after its first paint, or by then
BACKGROUND_START_MS = 1000  # after the first paint: the ring's first check, loading torch and the model


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
        self.prefs = Preferences(settings, self)
        a = self.actions = build_actions(self, settings.presets)

        self.viewer = ViewerArea()  # axial, coronal and sagittal views, linked
        self.view = self.viewer.axial
        self.setCentralWidget(self.viewer)
        self.viewer_actions = build_viewer_actions(self, self.viewer, a)
        self.controller = CaseController(self._ask, settings.autosave_delay_s, self)
        self.controller.user = settings.user
        self.edit = EditController(
            self.viewer,
            EditorSettings(settings.brush_mm, HURange(settings.blood_low_hu, settings.blood_high_hu)),
            lambda *q: self.controller.ask(*q),
            self,
            user=settings.user,
            model_path=lambda: self.predictions.wanted.path if self.predictions.wanted else None,
        )
        styles = {
            "manual": OverlayStyle(**vars(settings.manual)),
            "prediction": OverlayStyle(**vars(settings.prediction)),
        }
        self.worklist_panel = WorklistPanel(a)
        self.cases = WorklistController(self.worklist_panel, self.controller, self.reader, self)
        self.tools_panel = ToolsPanel(a, settings.brush_mm, settings.blood_low_hu, settings.blood_high_hu)
        self.display_panel = DisplayPanel(a, styles)
        self.measure_panel = MeasurePanel(self.viewer_actions, self.edit.fill_limit_ml)
        self.view_warning = ViewWarning(self.view)
        # the Use gate's confirmation goes through the controller's ask (tests replace it)
        self.ring_dock = RingDock(
            settings.site,
            lambda *q: self.controller.ask(*q),
            self,
            open_folder=lambda: str(self.worklist.folder) if self.worklist is not None else "",
        )
        self.reports = CaseReports(
            self.controller, lambda: self.worklist, self.case_state, self.ring_dock.ring.chosen, self
        )
        self.report_panel = ReportPanel(
            self.reports.case_job,
            self.reports.worklist_jobs,
            lambda: self.reports.choose_folder(self.settings.last_folder or str(Path.home())),
        )
        self.closer = CloseFlow(self, self.controller, self.ring_dock, self.prefs, self.status)
        self.predictions = PredictionController(self)
        self.pacs = PacsController(self)  # File > Get studies from PACS…, Send to PACS, PACS settings…
        self.islands = IslandsDialog(self)
        self.prediction_display = PredictionDisplay(
            self.controller,
            self.edit,
            self.predictions,
            self.viewer,
            self.display_panel,
            self.view_warning,
            self,
        )
        for name, style in styles.items():
            self.viewer.set_style(name, style)
        # the ring's child processes wait on their own threads: never starve case jobs
        pool = QThreadPool.globalInstance()
        pool.setMaxThreadCount(max(pool.maxThreadCount(), 8))
        self._build_docks()
        add_menus(self, a, self.viewer_actions, self.ring_dock.menu_actions(), self.pacs.actions())
        self.jobs = JobDisplay(self.statusBar())
        self.user_label = QLabel(f"user: {self.settings.user or UNNAMED}")
        self.statusBar().addPermanentWidget(self.user_label)
        self.statusBar().addPermanentWidget(self.ring_dock.status_label)
        self._live_timer = QTimer(self)
        self._live_timer.setSingleShot(True)
        self._live_timer.setInterval(250)
        self._live_timer.timeout.connect(self._update_live)
        self._flags: FlagTable = window_flags(a, self.viewer_actions, self.report_panel)
        self._connect()
        self.viewer.set_window(
            WindowLevel(settings.presets[0].width, settings.presets[0].level), settings.presets[0].name
        )
        self.update_flags()
        self._update_title()
        for dock in self.findChildren(QDockWidget):  # scrolling a panel never changes a setting
            guard_wheel_below(dock)
        if problem:
            self.status(problem)
        # the ring's first check and the model's loading (torch) start once the window is up:
        # importing torch on a worker still competes with the first paints for the interpreter
        after_first_paint(self, self._start_background, BACKGROUND_START_MS)

    def _start_background(self) -> None:
        if self.controller.busy:  # a case is being opened: it is shown first
            QTimer.singleShot(BACKGROUND_START_MS, self._start_background)
            return
        self.ring_dock.ring.start()
        self.predictions.warm_up()

    # ----------------------------------------------------------- layout
    def _build_docks(self) -> None:
        left = QDockWidget("Worklist", self)
        left.setObjectName("worklistDock")
        left.setWidget(self.worklist_panel)
        self.addDockWidget(Qt.DockWidgetArea.LeftDockWidgetArea, left)
        # the report (and Compare) right under the tools: reachable at 1500 x 950 without scrolling
        scroll = panel_column(self.tools_panel, self.report_panel, self.measure_panel, self.display_panel)
        scroll.setMinimumWidth(scroll.widget().sizeHint().width() + scroll.verticalScrollBar().sizeHint().width() + 4)
        right = QDockWidget("Tools", self)
        right.setObjectName("toolsDock")
        right.setWidget(scroll)
        self.addDockWidget(Qt.DockWidgetArea.RightDockWidgetArea, right)
        self.addDockWidget(Qt.DockWidgetArea.RightDockWidgetArea, self.ring_dock)
        self.tabifyDockWidget(right, self.ring_dock)
        right.raise_()
        self.resizeDocks([left, right], [420, 380], Qt.Orientation.Horizontal)

    def update_flags(self) -> None:
        apply_flags(ui_flags(self.controller.session), self._flags)

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
        a.accept_all.triggered.connect(self.prediction_display.accept_whole)
        a.islands.triggered.connect(self._show_islands)
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
            a.tools[Tool.FLOOD_FILL],
        )
        self.tools_panel.brushChanged.connect(self.edit.set_brush_mm)
        self.tools_panel.rangeChanged.connect(self.edit.set_hu_range)
        self.display_panel.styleChanged.connect(v.set_style)
        v.windowChanged.connect(self.display_panel.show_window)
        self.edit.message.connect(self.status)
        self.prediction_display.message.connect(self.status)
        self.edit.measure.changed.connect(self.measure_panel.show_measurements)
        self.measure_panel.removeRequested.connect(self.edit.measure.remove)
        self.measure_panel.limitChanged.connect(self.edit.set_fill_limit_ml)
        self.worklist_panel.openRequested.connect(self.open_label)
        self.worklist_panel.statusRequested.connect(self.cases.set_statuses)
        self.prefs.message.connect(self.status)
        self.prefs.nameGiven.connect(self.apply_settings)
        self.cases.message.connect(self.status)
        self.cases.failed.connect(self.error_text)
        self.cases.folderOpened.connect(self._folder_opened)
        self.cases.caseChanged.connect(lambda _label: self._refresh_case_views())
        self.report_panel.failed.connect(lambda text: self.error_text(text, "Volume report"))
        self.report_panel.segRequested.connect(lambda: self.reports.export_seg())
        self.report_panel.compareRequested.connect(lambda: self.reports.compare_masks())
        self.reports.message.connect(self.status)
        self.reports.failed.connect(self.error_text)
        self.reports.jobStarted.connect(self.jobs.track)
        c.opened.connect(self._opened)
        c.closed.connect(self._closed)
        c.opened.connect(self.islands.attach)
        c.closed.connect(lambda: self.islands.attach(None))
        c.maskChanged.connect(lambda _change: self.islands.mask_changed())
        self.islands.message.connect(self.status)
        self.islands.goTo.connect(self.viewer.set_cursor)
        c.maskChanged.connect(self._mask_changed)
        c.dirtyChanged.connect(self._dirty_changed)
        c.saved.connect(self._saved)
        c.message.connect(self.status)
        c.failed.connect(lambda text: self.error_text(text))
        c.jobStarted.connect(self.jobs.track)
        self.pacs.jobStarted.connect(self.jobs.track)
        self.pacs.caseRetrieved.connect(self.open_folder)  # the worklist shows the new case
        self._connect_ring()

    def _connect_ring(self) -> None:
        d, pc = self.ring_dock, self.predictions
        d.message.connect(self.status)
        d.alert.connect(lambda title, text: self.error_text(text, title))
        d.setupChanged.connect(self._site_changed)
        d.modelChosen.connect(pc.use_model)
        d.trainingEnded.connect(lambda _end: self.closer.training_ended())
        self.prediction_display.predictionChanged.connect(self._prediction_changed)
        pc.failed.connect(self.status)
        pc.started.connect(self.jobs.track)
        self.controller.opened.connect(pc.case_opened)
        self.controller.closed.connect(pc.case_closed)

    # ----------------------------------------------------------- user messages
    def status(self, text: str) -> None:
        self.statusBar().showMessage(text, 15000)

    def error_text(self, text: str, title: str = TITLE) -> None:
        self.status(text)
        warning_box(self, text, title)

    def _ask(self, title: str, text: str, buttons: list[str]) -> str:
        return ask(self, title, text, buttons)

    # ----------------------------------------------------------- training ring

    @property
    def settings(self) -> Settings:
        return self.prefs.settings

    def _site_changed(self, setup) -> None:
        self.prefs.remember(site=setup)

    def apply_site(self, setup) -> None:
        """Use and save a new site set-up (tests; the dialog goes through the ring dock)."""
        self.ring_dock.apply_site(setup)

    def _prediction_changed(self) -> None:
        self.update_flags()
        self._live_timer.start()
        self.cases.refresh_open_case()

    # ----------------------------------------------------------- worklist
    @property
    def worklist(self) -> Worklist | None:
        return self.cases.worklist

    def open_folder(self, folder: str | Path) -> None:
        """Open a site folder; the case open from another folder is closed first (asking to
        save its edits), so no case of the previous folder stays on screen."""
        s, wl = self.controller.session, self.worklist
        if s is None or (wl is not None and Path(folder).expanduser().resolve() == wl.folder.resolve()):
            self.cases.open_folder(folder)
            return
        self.controller.close_case(lambda ok: self.cases.open_folder(folder) if ok else None)

    def _folder_opened(self, wl: Worklist) -> None:
        self.prefs.remember(last_folder=str(wl.folder))  # at once: after a crash it opens again

    def open_label(self, label: str) -> None:
        self.reader()  # the reader's name, asked once, before the first case
        self.cases.open_label(label)

    def reader(self) -> str:
        """The reader's name for status records, corrected masks and measurements: asked once
        (never the computer's login), changed under Preferences."""
        return self.prefs.reader(self.ask_name)

    def ask_name(self) -> str:
        name, ok = QInputDialog.getText(
            self,
            "Your name",
            "Your name, as case statuses, corrected masks and measurements will record it\n"
            "(asked once; Preferences changes it):",
        )
        return name if ok else ""

    def restore_session(self) -> None:
        """At start-up: the last site folder again, and the case that was open when the program
        stopped (a crash): opening it offers its autosaved edits."""
        if self.settings.open_case:
            self.reader()
        self.cases.restore(self.settings.last_folder, self.settings.open_case)

    def set_status(self, label: str, status: CaseStatus) -> None:
        self.cases.set_status(label, status)

    def case_state(self) -> CaseState | None:
        return self.cases.case_state()

    # ----------------------------------------------------------- the open case
    def _opened(self, session) -> None:
        self.prefs.remember(open_case=str(session.paths.ct))  # reopened after a crash
        self.viewer.set_volume(
            session.hu, session.stack, session.model.data, session.prediction, session.first_slice_with_mask()
        )
        self.worklist_panel.model.set_open(self.controller.label, session.model.dirty)
        self.edit.attach(session)
        self._mask_changed(None)
        self._refresh_case_views()
        # its prediction (which may load torch on a worker) once the case is on screen
        after_first_paint(self.view.view.viewport(), self.predictions.refresh)
        QTimer.singleShot(PREDICT_AT_LATEST_MS, self.predictions.refresh)  # no paint (view hidden)
        if session.prediction is None:
            self.status(
                f"Case {session.case_id} opened; no model prediction ({session.paths.prediction.name}) beside it."
            )

    def _closed(self) -> None:
        self.prefs.remember(open_case="")
        self.edit.detach()
        self.viewer.clear()
        self.worklist_panel.model.set_open(None, False)
        self.update_flags()
        self.report_panel.show_live(None, None, "")
        self.view_warning.show_warning("")
        self._refresh_case_views()

    def _mask_changed(self, change) -> None:
        if change is not None:
            self.viewer.refresh_overlays(change.slices)
        self.update_flags()
        s = self.controller.session
        if s is not None:
            model = s.model
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
        s = self.controller.session
        self.cases.mask_saved(s.volume_ml() if s is not None else None)

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
        self.prediction_display.show_plausibility()

    def _update_title(self) -> None:
        state = self.case_state()
        if state is None:
            self.setWindowTitle(TITLE)
        else:
            star = " *" if state.unsaved else ""
            self.setWindowTitle(f"{TITLE} — case {state.label} [{state.status_text}]{star}")

    def _refresh_case_views(self) -> None:
        """Everything that shows the open case's state: title, worklist row, report panel."""
        self._update_title()
        if self.controller.label is not None:
            self.worklist_panel.model.case_changed(self.controller.label)
        self.worklist_panel.follow_selection()
        self._live_timer.start()

    def _show_islands(self) -> None:
        self.islands.attach(self.controller.session)
        self.islands.show()
        self.islands.raise_()

    def _mask_hu(self) -> None:
        s = self.controller.session
        if s is None:
            return
        dlg = MaskHUDialog(s.hu, s.model.data, self.edit.measure.record_mask_hu, self)
        dlg.exec()
        dlg.deleteLater()

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
        self.prefs.settings = s
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
        self.controller.user = s.user
        self.edit.measure.user = s.user
        self.user_label.setText(f"user: {s.user or UNNAMED}")

    # ----------------------------------------------------------- closing
    def closeEvent(self, event) -> None:  # noqa: N802
        self.closer.close_event(event)
