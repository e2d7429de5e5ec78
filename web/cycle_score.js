// Shows Cycle Edit's score and the reverse instruction it used under the node after a run.
import { app } from "../../scripts/app.js";

const NODE = "UnpairedEdit_CycleEdit";

app.registerExtension({
    name: "unpaired_edit.cycle_score",
    async beforeRegisterNodeDef(nodeType, nodeData) {
        if (nodeData.name !== NODE) return;

        const onExecuted = nodeType.prototype.onExecuted;
        nodeType.prototype.onExecuted = function (message) {
            onExecuted?.apply(this, arguments);
            const score = message?.cycle_score?.[0];
            if (typeof score !== "number") return;
            this.unpairedEditStatus = [
                `cycle score ${score.toFixed(3)}`,
                `reverse: ${message.reverse_instruction?.[0] ?? ""}`,
            ];
            this.setDirtyCanvas(true, false);
        };

        const onDrawForeground = nodeType.prototype.onDrawForeground;
        nodeType.prototype.onDrawForeground = function (ctx) {
            onDrawForeground?.apply(this, arguments);
            if (!this.unpairedEditStatus || this.flags?.collapsed) return;
            ctx.save();
            ctx.font = "12px sans-serif";
            ctx.fillStyle = "#9fd39f";
            this.unpairedEditStatus.forEach((line, i) => ctx.fillText(line, 4, this.size[1] + 16 + 14 * i));
            ctx.restore();
        };
    },
});
