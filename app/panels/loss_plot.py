"""Live loss curves of a training turn: a small QPainter widget.

Two polylines (running training loss per batch, validation loss per epoch)
on shared axes, redrawn only when new points arrive. A plain widget rather
than a pyqtgraph PlotWidget: destroying a PlotWidget together with the main
window crashed Qt (double deletion in QGraphicsScene::clear, PySide6 6.11).
"""

from __future__ import annotations

from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import QColor, QPainter, QPen, QPolygonF
from PySide6.QtWidgets import QSizePolicy, QWidget

TRAIN = QColor("#28c8ff")
VAL = QColor("#ff8020")


class LossPlot(QWidget):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setMinimumHeight(140)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        self.train: list[tuple[float, float]] = []  # (epoch position, loss)
        self.val: list[tuple[float, float]] = []

    def set_data(self, train: list[tuple[float, float]], val: list[tuple[float, float]]) -> None:
        self.train, self.val = list(train), list(val)
        self.update()

    def paintEvent(self, _event) -> None:  # noqa: N802
        p = QPainter(self)
        p.setRenderHint(QPainter.RenderHint.Antialiasing)
        p.fillRect(self.rect(), QColor("#101010"))
        area = QRectF(self.rect()).adjusted(44, 8, -8, -22)
        p.setPen(QPen(QColor("#808080")))
        p.drawRect(area)
        pts = self.train + self.val
        if not pts:
            p.drawText(area, Qt.AlignmentFlag.AlignCenter, "loss curves appear while training")
            return
        x1 = max(max(x for x, _ in pts), 1.0)
        y0, y1 = min(y for _, y in pts), max(y for _, y in pts)
        if y1 - y0 < 1e-6:
            y0, y1 = y0 - 0.05, y1 + 0.05

        def at(x: float, y: float) -> QPointF:
            return QPointF(area.left() + area.width() * x / x1, area.bottom() - area.height() * (y - y0) / (y1 - y0))

        p.drawText(QRectF(0, area.top() - 6, 42, 14), Qt.AlignmentFlag.AlignRight, f"{y1:.3g}")
        p.drawText(QRectF(0, area.bottom() - 8, 42, 14), Qt.AlignmentFlag.AlignRight, f"{y0:.3g}")
        p.drawText(
            QRectF(area.left(), area.bottom() + 4, area.width(), 14), Qt.AlignmentFlag.AlignRight, f"epoch {x1:.0f}"
        )
        for data, color, width in ((self.train, TRAIN, 1.5), (self.val, VAL, 2.5)):
            if not data:
                continue
            p.setPen(QPen(color, width))
            p.drawPolyline(QPolygonF([at(x, y) for x, y in data]))
            if data is self.val:
                for x, y in data:
                    p.drawEllipse(at(x, y), 3, 3)
        p.setPen(QPen(TRAIN))
        p.drawText(QRectF(area.left() + 6, area.top() + 2, 200, 14), Qt.AlignmentFlag.AlignLeft, "training")
        p.setPen(QPen(VAL))
        p.drawText(QRectF(area.left() + 76, area.top() + 2, 200, 14), Qt.AlignmentFlag.AlignLeft, "validation")
