"""Chinese surnames, single and compound, as the person-name recogniser reads them.

Every surname of the Hundred Family Surnames (百家姓), single and compound, with the other characters some of
them are registered under (却 and 郤 for 卻, 麴 beside 曲), the surnames of the national census ranking it leaves
out (肖, 付, 覃, 兰 ...) and two compound surnames outside it (独孤, 完颜). Complete on purpose: a name whose
surname is missing here is a name detection cannot see. Many of these characters also begin ordinary words (和,
时, 国, 海); detection keeps its precision by judging a field's values together (a share of at least 80 % of
enough distinct values), not by leaving surnames out.
"""

from __future__ import annotations

HUNDRED_FAMILY_SINGLE = (
    "赵钱孙李周吴郑王冯陈褚卫蒋沈韩杨朱秦尤许何吕施张孔曹严华金魏陶姜戚谢邹喻柏水窦章云苏潘葛奚范彭郎"
    "鲁韦昌马苗凤花方俞任袁柳酆鲍史唐费廉岑薛雷贺倪汤滕殷罗毕郝邬安常乐于时傅皮卞齐康伍余元卜顾孟平黄"
    "和穆萧尹姚邵湛汪祁毛禹狄米贝明臧计伏成戴谈宋茅庞熊纪舒屈项祝董梁杜阮蓝闵席季麻强贾路娄危江童颜郭"
    "梅盛林刁钟徐邱骆高夏蔡田樊胡凌霍虞万支柯昝管卢莫经房裘缪干解应宗丁宣贲邓郁单杭洪包诸左石崔吉钮龚"
    "程嵇邢滑裴陆荣翁荀羊於惠甄曲家封芮羿储靳汲邴糜松井段富巫乌焦巴弓牧隗山谷车侯宓蓬全郗班仰秋仲伊宫"
    "宁仇栾暴甘钭厉戎祖武符刘景詹束龙叶幸司韶郜黎蓟薄印宿白怀蒲邰从鄂索咸籍赖卓蔺屠蒙池乔阴鬱胥能苍双"
    "闻莘党翟谭贡劳逄姬申扶堵冉宰郦雍卻璩桑桂濮牛寿通边扈燕冀郏浦尚农温别庄晏柴瞿阎充慕连茹习宦艾鱼容"
    "向古易慎戈廖庾终暨居衡步都耿满弘匡国文寇广禄阙东欧殳沃利蔚越夔隆师巩厍聂晁勾敖融冷訾辛阚那简饶空"
    "曾毋沙乜养鞠须丰巢关蒯相查后荆红游竺权逯盖益桓公仉督晋楚闫法汝鄢涂钦归海岳帅缑亢况郈有琴商牟佘佴"
    "墨哈谯笪年爱阳佟言福"
)
VARIANTS = "却郤麴"  # 卻 as registered today, and the older form of 曲
CENSUS_SINGLE = (
    "肖付覃兰代芦麦隋丛苑迟邝官栗谌粟冼楼盘位仝区豆朴练卿初门敬来普鹿邸辜阿母亓战玉银宾揭但斯檀衣信展智"
    "植尧闭由雒过禤矫修铁字保原南尉漆苟赫"
)
SINGLE_SURNAMES = frozenset(HUNDRED_FAMILY_SINGLE + VARIANTS + CENSUS_SINGLE)

HUNDRED_FAMILY_COMPOUND = (
    "万俟 司马 上官 欧阳 夏侯 诸葛 闻人 东方 赫连 皇甫 尉迟 公羊 澹台 公冶 宗政 濮阳 淳于 单于 太叔 申屠 公孙 仲孙 "
    "轩辕 令狐 钟离 宇文 长孙 慕容 鲜于 闾丘 司徒 司空 亓官 司寇 子车 颛孙 端木 巫马 公西 漆雕 乐正 壤驷 公良 "
    "拓跋 夹谷 宰父 谷梁 段干 百里 东郭 南门 呼延 羊舌 微生 梁丘 左丘 东门 西门 伯赏 南宫 第五"
)
OTHER_COMPOUND = "独孤 完颜"  # outside the classic, still registered
COMPOUND_SURNAMES = frozenset((HUNDRED_FAMILY_COMPOUND + " " + OTHER_COMPOUND).split())
